// bench_comm.c — what the MPI link costs: ping-pong, all-reduce (sum of floats), all-gatherv and
// broadcast times against message size, at the process count of mpirun, each fitted to a latency
// alpha and an inverse bandwidth beta (t = alpha + beta * bytes). The cost model
// (bench/scaling_model --comm) reads these rows; Tests/multihost/run-two-hosts.sh prints them for
// the link it shaped.
//
// "bytes" is the message the model sees: the vector every rank ends with (all-reduce, all-gather:
// each rank contributes bytes/P of it, the first ranks one float more when it does not divide;
// broadcast: what the root sends) and, for the ping-pong, the message sent each way (its time is
// the round trip; the fit is of half of it, so its alpha is the one-way latency).
//
// Each size: warm-up calls, then timed repetitions, each started at a barrier and lasting as long
// as the slowest rank; median and best. Repetitions shrink for large messages (a time budget per
// size) but never below 3. The fit is least squares weighted by 1/t^2 (relative residuals), so
// 4-byte latencies and 64 MiB transfers count alike; its quality is the RMS relative residual.
//
// With --gap-us N the ranks do N us of busy work (rank r: N(1 + r/10)) before each call instead of
// meeting at a barrier, so they arrive apart as in a forward pass; the time is still the slowest
// rank's call.
//
// usage: mpirun -np P bench_comm [--min-bytes N] [--max-bytes N] [--step 2|4] [--iters N]
//            [--warmup N] [--budget-ms N] [--gap-us N] [--sizes N,N,...] [--collectives pingpong,allreduce,allgather,bcast]
//            [-o text|csv|jsonl] [--json PATH]
// Sizes may carry K/M suffixes (KiB, MiB). --sizes replaces the power-of-step range.
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum collective { PINGPONG, ALLREDUCE, ALLGATHER, BCAST, COLLECTIVES };
static const char *const collective_names[COLLECTIVES] = {"pingpong", "allreduce", "allgather", "bcast"};

enum format { TEXT, CSV, JSONL };

struct options {
    size_t min_bytes, max_bytes;
    int step;
    int iters, warmup;
    double budget_ms;               // time per size after which repetitions stop (at least 3)
    double gap_us;                  // busy work between calls instead of a barrier (the model's pattern)
    int enabled[COLLECTIVES];
    size_t sizes[64];
    int n_sizes;                    // 0: the min..max range
    enum format format;
    const char *json_path;
};

// One measured size.
struct sample {
    size_t bytes;
    double median_us, best_us;
    int reps;
};

static int rank, procs;

static void die(const char *message) {
    if (rank == 0) fprintf(stderr, "bench_comm: %s\n", message);
    MPI_Abort(MPI_COMM_WORLD, 1);
    exit(1);
}

static size_t parse_bytes(const char *s) {
    char *end;
    double v = strtod(s, &end);
    if (end == s || v < 0) die("a size must be a non-negative number, optionally with K or M");
    if (*end == 'K' || *end == 'k') v *= 1024, end++;
    else if (*end == 'M' || *end == 'm') v *= 1024 * 1024, end++;
    if (*end == 'i') end++;
    if (*end == 'B') end++;
    if (*end) die("a size has trailing characters");
    return (size_t)v;
}

static int compare_doubles(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

// The per-rank element counts and displacements of an all-gatherv of `floats` floats.
static void gather_layout(size_t floats, int *counts, int *displs) {
    size_t base = floats / (size_t)procs, extra = floats % (size_t)procs, at = 0;
    for (int r = 0; r < procs; r++) {
        counts[r] = (int)(base + ((size_t)r < extra));
        displs[r] = (int)at;
        at += (size_t)counts[r];
    }
}

// One call of the collective on `bytes` bytes (rounded up to whole floats, at least one).
static void run_once(enum collective c, size_t floats, float *send, float *recv, int *counts, int *displs) {
    switch (c) {
    case PINGPONG:
        if (rank == 0) {
            MPI_Send(send, (int)floats, MPI_FLOAT, 1, 0, MPI_COMM_WORLD);
            MPI_Recv(recv, (int)floats, MPI_FLOAT, 1, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        } else if (rank == 1) {
            MPI_Recv(recv, (int)floats, MPI_FLOAT, 0, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
            MPI_Send(recv, (int)floats, MPI_FLOAT, 0, 0, MPI_COMM_WORLD);
        }
        break;
    case ALLREDUCE:
        MPI_Allreduce(send, recv, (int)floats, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
        break;
    case ALLGATHER:
        MPI_Allgatherv(send, counts[rank], MPI_FLOAT, recv, counts, displs, MPI_FLOAT, MPI_COMM_WORLD);
        break;
    case BCAST:
        MPI_Bcast(send, (int)floats, MPI_FLOAT, 0, MPI_COMM_WORLD);
        break;
    default:
        break;
    }
}

// Busy work standing for the compute between two collectives of a forward pass.
static void spin_us(double us) {
    double end = MPI_Wtime() + us * 1e-6;
    while (MPI_Wtime() < end) {
    }
}

// Times one size: warm-up, then repetitions until iters or the budget (at least 3); each
// repetition's time is the slowest rank's.
static struct sample measure(enum collective c, size_t bytes, const struct options *o, float *send, float *recv,
                             int *counts, int *displs, double *times) {
    size_t floats = bytes < sizeof(float) ? 1 : (bytes + sizeof(float) - 1) / sizeof(float);
    gather_layout(floats, counts, displs);
    for (int i = 0; i < o->warmup; i++) run_once(c, floats, send, recv, counts, displs);
    int reps = 0;
    double spent = 0;
    while (reps < o->iters) {
        if (o->gap_us > 0) spin_us(o->gap_us * (1 + 0.1 * rank));  // ranks arrive a little apart
        else MPI_Barrier(MPI_COMM_WORLD);
        double t0 = MPI_Wtime();
        run_once(c, floats, send, recv, counts, displs);
        double mine = MPI_Wtime() - t0, slowest;
        MPI_Allreduce(&mine, &slowest, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
        times[reps++] = slowest * 1e6;
        spent += slowest * 1e3;
        int stop = reps >= 3 && spent >= o->budget_ms;
        MPI_Bcast(&stop, 1, MPI_INT, 0, MPI_COMM_WORLD);  // every rank leaves the loop together
        if (stop) break;
    }
    qsort(times, (size_t)reps, sizeof(double), compare_doubles);
    double median = reps % 2 ? times[reps / 2] : 0.5 * (times[reps / 2 - 1] + times[reps / 2]);
    return (struct sample){bytes, median, times[0], reps};
}

// t = alpha + beta * bytes by least squares with weights 1/t^2; rms_rel is the RMS of
// (fit - t) / t. For the ping-pong, t is half the round trip.
struct fit {
    double alpha_us, beta_us_per_byte, rms_rel;
};

static struct fit fit_line(const struct sample *s, int n, double scale) {
    double sw = 0, sx = 0, sy = 0, sxx = 0, sxy = 0;
    for (int i = 0; i < n; i++) {
        double x = (double)s[i].bytes, y = s[i].median_us * scale, w = 1.0 / (y * y);
        sw += w, sx += w * x, sy += w * y, sxx += w * x * x, sxy += w * x * y;
    }
    struct fit f = {0};
    double det = sw * sxx - sx * sx;
    if (n < 2 || det == 0) return (struct fit){n ? s[0].median_us * scale : 0, 0, 0};
    f.beta_us_per_byte = (sw * sxy - sx * sy) / det;
    f.alpha_us = (sy - f.beta_us_per_byte * sx) / sw;
    double r2 = 0;
    for (int i = 0; i < n; i++) {
        double y = s[i].median_us * scale, r = (f.alpha_us + f.beta_us_per_byte * (double)s[i].bytes - y) / y;
        r2 += r * r;
    }
    f.rms_rel = sqrt(r2 / n);
    return f;
}

static void emit_sample(const struct options *o, FILE *json, const char *name, const struct sample *s) {
    char line[512];
    snprintf(line, sizeof line,
             "{\"kind\":\"sample\",\"collective\":\"%s\",\"bytes\":%zu,\"procs\":%d,\"median_us\":%.3f,"
             "\"best_us\":%.3f,\"reps\":%d}",
             name, s->bytes, procs, s->median_us, s->best_us, s->reps);
    if (json) fprintf(json, "%s\n", line);
    if (o->format == JSONL) printf("%s\n", line);
    else if (o->format == CSV)
        printf("sample,%s,%zu,%d,%.3f,%.3f,%d,,,,\n", name, s->bytes, procs, s->median_us, s->best_us, s->reps);
    else
        printf("  %-10s %12zu B  median %12.2f us  best %12.2f us  (%d reps)\n", name, s->bytes, s->median_us,
               s->best_us, s->reps);
}

static void emit_fit(const struct options *o, FILE *json, const char *name, struct fit f, int points) {
    double beta_ns = f.beta_us_per_byte * 1e3;
    double gbps = beta_ns > 0 ? 8.0 / beta_ns : 0;  // gigabits per second, as link rates are quoted
    char line[512];
    snprintf(line, sizeof line,
             "{\"kind\":\"fit\",\"collective\":\"%s\",\"procs\":%d,\"alpha_us\":%.3f,\"beta_ns_per_byte\":%.6f,"
             "\"gbps\":%.4f,\"rms_rel_error\":%.4f,\"points\":%d}",
             name, procs, f.alpha_us, beta_ns, gbps, f.rms_rel, points);
    if (json) fprintf(json, "%s\n", line);
    if (o->format == JSONL) printf("%s\n", line);
    else if (o->format == CSV)
        printf("fit,%s,,%d,,,,%.3f,%.6f,%.4f,%.4f\n", name, procs, f.alpha_us, beta_ns, gbps, f.rms_rel);
    else
        printf("  %-10s fit: alpha %.2f us, beta %.5f ns/byte (%.3f Gbit/s), rms relative error %.1f%% over %d sizes\n",
               name, f.alpha_us, beta_ns, gbps, 100 * f.rms_rel, points);
}

static void usage(void) {
    die("usage: bench_comm [--min-bytes N] [--max-bytes N] [--step 2|4] [--iters N] [--warmup N] [--budget-ms N] "
        "[--gap-us N] [--sizes N,N,...] [--collectives pingpong,allreduce,allgather,bcast] [-o text|csv|jsonl] [--json PATH]");
}

static void parse(int argc, char **argv, struct options *o) {
    *o = (struct options){.min_bytes = 4, .max_bytes = 64u << 20, .step = 4, .iters = 20, .warmup = 2,
                          .budget_ms = 1000, .enabled = {1, 1, 1, 1}, .format = TEXT};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) usage();
        if (!strcmp(a, "--min-bytes")) o->min_bytes = parse_bytes(v);
        else if (!strcmp(a, "--max-bytes")) o->max_bytes = parse_bytes(v);
        else if (!strcmp(a, "--step")) o->step = atoi(v);
        else if (!strcmp(a, "--iters")) o->iters = atoi(v);
        else if (!strcmp(a, "--warmup")) o->warmup = atoi(v);
        else if (!strcmp(a, "--budget-ms")) o->budget_ms = atof(v);
        else if (!strcmp(a, "--gap-us")) o->gap_us = atof(v);
        else if (!strcmp(a, "--json")) o->json_path = v;
        else if (!strcmp(a, "-o") || !strcmp(a, "--output")) {
            if (!strcmp(v, "text")) o->format = TEXT;
            else if (!strcmp(v, "csv")) o->format = CSV;
            else if (!strcmp(v, "jsonl")) o->format = JSONL;
            else usage();
        } else if (!strcmp(a, "--sizes")) {
            char *copy = strdup(v);
            for (char *t = strtok(copy, ","); t; t = strtok(NULL, ",")) {
                if (o->n_sizes == 64) die("at most 64 sizes");
                o->sizes[o->n_sizes++] = parse_bytes(t);
            }
            free(copy);
        } else if (!strcmp(a, "--collectives")) {
            memset(o->enabled, 0, sizeof o->enabled);
            char *copy = strdup(v);
            for (char *t = strtok(copy, ","); t; t = strtok(NULL, ",")) {
                int found = 0;
                for (int c = 0; c < COLLECTIVES; c++)
                    if (!strcmp(t, collective_names[c])) o->enabled[c] = found = 1;
                if (!found) die("unknown collective (pingpong, allreduce, allgather, bcast)");
            }
            free(copy);
        } else usage();
        i++;
    }
    if (o->step != 2 && o->step != 4) die("--step must be 2 or 4");
    if (o->iters < 3 || o->iters > 1000 || o->warmup < 0) die("--iters must be 3..1000 and --warmup >= 0");
    if (o->min_bytes < 1 || o->max_bytes < o->min_bytes) die("need 1 <= --min-bytes <= --max-bytes");
    if (o->n_sizes == 0)
        for (size_t b = o->min_bytes; b <= o->max_bytes && o->n_sizes < 64; b *= (size_t)o->step)
            o->sizes[o->n_sizes++] = b;
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &procs);
    struct options o;
    parse(argc, argv, &o);
    if (o.enabled[PINGPONG] && procs < 2) o.enabled[PINGPONG] = 0;  // nobody to answer

    size_t largest = 0;
    for (int i = 0; i < o.n_sizes; i++)
        if (o.sizes[i] > largest) largest = o.sizes[i];
    if (largest / sizeof(float) + 1 > (size_t)2147483647) die("a size is beyond MPI's int counts");
    size_t floats = largest / sizeof(float) + 1;
    float *send = malloc(floats * sizeof(float)), *recv = malloc(floats * sizeof(float));
    int *counts = malloc((size_t)procs * sizeof(int)), *displs = malloc((size_t)procs * sizeof(int));
    double *times = malloc((size_t)o.iters * sizeof(double));
    if (!send || !recv || !counts || !displs || !times) die("cannot allocate the message buffers");
    for (size_t i = 0; i < floats; i++) send[i] = (float)(i % 97) * 0.01f, recv[i] = 0;

    FILE *json = NULL;
    if (rank == 0 && o.json_path && !(json = fopen(o.json_path, "a"))) die("cannot open the --json file");
    if (rank == 0) {
        if (o.format == CSV) printf("kind,collective,bytes,procs,median_us,best_us,reps,alpha_us,beta_ns_per_byte,gbps,rms_rel_error\n");
        else if (o.format == TEXT) printf("bench_comm: %d processes, %d sizes %zu..%zu bytes\n", procs, o.n_sizes, o.sizes[0], largest);
    }
    struct sample samples[64];
    for (int c = 0; c < COLLECTIVES; c++) {
        if (!o.enabled[c]) continue;
        for (int i = 0; i < o.n_sizes; i++) {
            samples[i] = measure((enum collective)c, o.sizes[i], &o, send, recv, counts, displs, times);
            if (rank == 0) emit_sample(&o, json, collective_names[c], &samples[i]);
        }
        if (rank == 0) emit_fit(&o, json, collective_names[c], fit_line(samples, o.n_sizes, c == PINGPONG ? 0.5 : 1.0), o.n_sizes);
        if (rank == 0) fflush(stdout);
    }
    if (json) fclose(json);
    free(send), free(recv), free(counts), free(displs), free(times);
    MPI_Finalize();
    return 0;
}
