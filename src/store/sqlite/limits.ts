/** better-sqlite3's SQLite is built with SQLITE_MAX_VARIABLE_NUMBER = 32766. */
export const SQLITE_MAX_PARAMETERS = 32766;
