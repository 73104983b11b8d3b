//! Every stable error code of Tenet, with its HTTP status: the one place codes are made.
//!
//! Each crate keeps its own error enum with context (`tenet_store::Error`,
//! `tenet_backup::Error`, …) and maps it to a [`Code`]; the server, the client, the CLI
//! and failed jobs all spell codes through this enum, so a code cannot be invented
//! elsewhere. Codes are part of the API: never rename one. `docs/api.md` lists them
//! (a test checks that the list and [`Code::ALL`] agree).

macro_rules! codes {
    ($($(#[$doc:meta])* $name:ident = $status:literal,)*) => {
        /// A stable error code.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[allow(non_camel_case_types)]
        pub enum Code {
            $($(#[$doc])* $name,)*
        }

        impl Code {
            /// Every code.
            pub const ALL: &'static [Code] = &[$(Code::$name,)*];

            /// The code as the API spells it.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Code::$name => stringify!($name),)*
                }
            }

            /// The HTTP status an answer with this code has.
            pub fn status(self) -> u16 {
                match self {
                    $(Code::$name => $status,)*
                }
            }
        }
    };
}

codes! {
    // Input.
    /// A bad name, key, time, limit or parameter.
    INVALID_ARGUMENT = 400,
    /// A row that does not match its table's schema.
    INVALID_ROW = 400,
    /// A body that is not JSON, not an object, or of the wrong shape.
    MALFORMED_JSON = 400,
    /// A request that is not valid HTTP/1.1.
    MALFORMED_REQUEST = 400,
    /// A repository URL that cannot be used.
    INVALID_REPOSITORY = 400,
    UNSUPPORTED_MEDIA_TYPE = 415,
    PAYLOAD_TOO_LARGE = 413,
    TXN_TOO_LARGE = 413,
    URI_TOO_LONG = 414,
    HEADERS_TOO_LARGE = 431,
    // Who calls.
    /// No token, or one that is malformed, unknown, revoked or expired.
    UNAUTHENTICATED = 401,
    /// The token's role does not allow the operation.
    FORBIDDEN = 403,
    // Not found.
    /// No such endpoint.
    NOT_FOUND = 404,
    METHOD_NOT_ALLOWED = 405,
    TENANT_NOT_FOUND = 404,
    TABLE_NOT_FOUND = 404,
    SNAPSHOT_NOT_FOUND = 404,
    BACKUP_NOT_FOUND = 404,
    JOB_NOT_FOUND = 404,
    REPOSITORY_NOT_FOUND = 404,
    STRATEGY_NOT_FOUND = 404,
    TOKEN_NOT_FOUND = 404,
    /// No Tenet store in the data directory (CLI).
    STORE_NOT_FOUND = 404,
    // State.
    TENANT_EXISTS = 409,
    TABLE_EXISTS = 409,
    COLUMN_EXISTS = 409,
    SNAPSHOT_EXISTS = 409,
    TENANT_STATE = 409,
    /// A concurrent transaction won; retry.
    CONFLICT = 409,
    JOB_CONFLICT = 409,
    CANCELLED = 409,
    NOT_RESTORABLE = 409,
    BACKUP_IN_USE = 409,
    SERVER_REQUIRED = 409,
    NOT_PRIMARY = 409,
    STANDBY_BEHIND = 409,
    REPOSITORY_CONFLICT = 409,
    ARCHIVE_BEHIND = 409,
    TOO_OLD = 410,
    /// The tenant's keys were destroyed (crypto-shredded): its backups are unreadable.
    KEY_DESTROYED = 410,
    BACKUP_CORRUPT = 422,
    UNSUPPORTED_FORMAT_VERSION = 422,
    VERIFY_FAILED = 422,
    /// A sealed object and no master key (or another one, or no data key) to open it.
    KEY_UNAVAILABLE = 422,
    // Inside.
    CORRUPT = 500,
    INTERNAL = 500,
    /// A response this client cannot read.
    BAD_RESPONSE = 502,
    UNAVAILABLE = 503,
    TENANT_MOVING = 503,
    REPOSITORY_UNAVAILABLE = 503,
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Code {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        Code::ALL
            .iter()
            .copied()
            .find(|c| c.as_str() == s)
            .ok_or(())
    }
}
