#pragma once
#include <sqlite3.h>

/* flowrec's virtual table over many shards: SQLite's base structs first, as the
   virtual-table interface requires, then a pointer to the Swift object behind them. */
typedef struct flowrec_vtab {
    sqlite3_vtab base;
    void *owner;
} flowrec_vtab;

typedef struct flowrec_vtab_cursor {
    sqlite3_vtab_cursor base;
    void *owner;
} flowrec_vtab_cursor;
