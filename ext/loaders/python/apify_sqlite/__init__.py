"""apify-sqlite: the SQLite extension that creates Apify webhooks from SQL, for Python's sqlite3.

    import sqlite3, apify_sqlite
    conn = sqlite3.connect("hooks.db")
    apify_sqlite.load(conn)                    # or load(conn, no_network=True)

The compiled extension sits beside this file; loadable_path() is its path without the suffix
(.so, .dylib, .dll), which SQLite adds itself. The Python must allow loading extensions
(Debian's does; pyenv's and Apple's usually do not).
"""

import os

__version__ = "@VERSION@"
__all__ = ["loadable_path", "load", "NO_NETWORK_ENTRY_POINT", "__version__"]

# The entry point for hosts that run other people's SQL: only the dry run and the version, no
# network, no token, no environment.
NO_NETWORK_ENTRY_POINT = "sqlite3_apify_no_network_init"


def loadable_path():
    """The path of the compiled extension, without its suffix."""
    return os.path.normpath(os.path.join(os.path.dirname(__file__), "apify"))


def load(conn, no_network=False):
    """Load the extension into sqlite3 connection conn (default entry point sqlite3_apify_init,
    or, with no_network=True, sqlite3_apify_no_network_init). Loading extensions is enabled for
    the call and disabled again afterwards."""
    conn.enable_load_extension(True)
    try:
        if no_network:
            # SQL's load_extension(path, entry point): Connection.load_extension() takes an
            # entry point only from Python 3.12 on.
            conn.execute("SELECT load_extension(?, ?)",
                         (loadable_path(), NO_NETWORK_ENTRY_POINT)).fetchall()
        else:
            conn.load_extension(loadable_path())
    finally:
        conn.enable_load_extension(False)
