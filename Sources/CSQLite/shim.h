#include <sqlite3.h>

/// sqlite3_db_config(db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, on, NULL): the last connection to
/// close leaves the WAL as it is instead of checkpointing it (and deleting it). Variadic in
/// SQLite, so not callable from Swift. Returns SQLITE_OK or an error code.
static inline int agentgate_sqlite3_no_checkpoint_on_close(sqlite3 *db, int on) {
    return sqlite3_db_config(db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, on, (int *)0);
}
