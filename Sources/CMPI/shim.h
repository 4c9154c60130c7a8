// shim.h — Open MPI for Swift. Open MPI's predefined handles are macros over global objects,
// which Swift cannot import; each shim below returns one of them and exists only for that reason.
#ifndef CMPI_SHIM_H
#define CMPI_SHIM_H

#include <mpi.h>

static inline MPI_Comm cmpi_comm_world(void) { return MPI_COMM_WORLD; }  // MPI_COMM_WORLD
static inline MPI_Datatype cmpi_float(void) { return MPI_FLOAT; }        // MPI_FLOAT
static inline MPI_Datatype cmpi_double(void) { return MPI_DOUBLE; }      // MPI_DOUBLE
static inline MPI_Datatype cmpi_int(void) { return MPI_INT; }            // MPI_INT
static inline MPI_Datatype cmpi_char(void) { return MPI_CHAR; }          // MPI_CHAR
static inline MPI_Datatype cmpi_byte(void) { return MPI_BYTE; }          // MPI_BYTE
static inline MPI_Op cmpi_sum(void) { return MPI_SUM; }                  // MPI_SUM
static inline MPI_Op cmpi_max(void) { return MPI_MAX; }                  // MPI_MAX
static inline MPI_Op cmpi_min(void) { return MPI_MIN; }                  // MPI_MIN
static inline void *cmpi_in_place(void) { return MPI_IN_PLACE; }         // MPI_IN_PLACE

#endif
