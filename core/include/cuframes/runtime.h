/* cuframes/runtime.h: the runtime directory (where the rendezvous sockets live) and the live
 * publishers in it.
 * Part of the C ABI of <cuframes/cuframes.h> (include that one): the rules at its top hold
 * for every declaration here. */
#ifndef CUFRAMES_RUNTIME_H_
#define CUFRAMES_RUNTIME_H_

#include "cuframes/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------------------------------
 * The runtime directory that runtime_dir (NULL: the rule at the top of cuframes.h) names, as a peer
 * resolves it: only looking, nothing is created (a publisher creates it). Written NUL-terminated
 * into out (cap bytes; CUFRAMES_PATH_MAX is enough); *exists, if not NULL, is 1 when it is there,
 * else 0 (no publisher has made it yet). INVALID_ARGUMENT when cap is too small, SHM when it exists
 * but cannot be used. */
#define CUFRAMES_PATH_MAX 4096
CUFRAMES_EXPORT cuframes_status_t cuframes_runtime_dir(const char* runtime_dir, char* out,
                                                       size_t cap, int* exists);
/* The same directory as a publisher resolves it: made (mode 01770) when missing. For programs
 * that keep files of their own beside the rings (cuframes-service's status file). INVALID_ARGUMENT
 * when cap is too small, SHM when it cannot be made or used. */
CUFRAMES_EXPORT cuframes_status_t cuframes_runtime_dir_create(const char* runtime_dir, char* out,
                                                              size_t cap);

/* ---------------------------------------------------------------------------------------------
 * Live publishers in a runtime directory (NULL = resolved, looking only: a directory that is not
 * there has none, and is not created). */
typedef struct cuframes_key_list_t cuframes_key_list_t;
CUFRAMES_EXPORT cuframes_status_t cuframes_list_publishers(const char* runtime_dir,
                                                           cuframes_key_list_t** out);
CUFRAMES_EXPORT size_t cuframes_key_list_size(const cuframes_key_list_t* list);
/* Sorted; valid until the list is destroyed. */
CUFRAMES_EXPORT const char* cuframes_key_list_get(const cuframes_key_list_t* list, size_t index);
CUFRAMES_EXPORT void cuframes_key_list_destroy(cuframes_key_list_t* list);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* CUFRAMES_RUNTIME_H_ */
