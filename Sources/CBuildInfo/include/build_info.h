#ifndef FLOWREC_BUILD_INFO_H
#define FLOWREC_BUILD_INFO_H
/// The git commit the package was built from (Package.swift reads it from .git when the
/// manifest is evaluated), or "unknown" outside a git checkout.
const char *flowrec_build_commit(void);
#endif
