#include "build_info.h"
#ifndef FLOWREC_COMMIT
#define FLOWREC_COMMIT "unknown"
#endif
const char *flowrec_build_commit(void) { return FLOWREC_COMMIT; }
