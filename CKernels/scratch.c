// scratch.c — per-thread grow-only buffers (scratch_internal.h).
#include "scratch_internal.h"

#include <pthread.h>
#include <stdlib.h>

static pthread_key_t keys[CK_SCRATCH_SLOTS];
static pthread_once_t keys_once = PTHREAD_ONCE_INIT;

static void create_keys(void) {
    for (int s = 0; s < CK_SCRATCH_SLOTS; s++) pthread_key_create(&keys[s], free);
}

// The allocation starts with its usable size in a 64-byte header.
void *ck_thread_scratch(enum ck_scratch_slot slot, size_t bytes) {
    pthread_once(&keys_once, create_keys);
    unsigned char *base = pthread_getspecific(keys[slot]);
    if (base != NULL && *(size_t *)base >= bytes) return base + 64;
    free(base);
    base = aligned_alloc(64, 64 + (bytes + 63) / 64 * 64);
    if (base != NULL) *(size_t *)base = bytes;
    pthread_setspecific(keys[slot], base);
    return base != NULL ? base + 64 : NULL;
}
