use thiserror::Error;

#[derive(Debug, Error)]
pub enum StoreError {
    /// A unique constraint refused the write. `constraint` is the index name on PostgreSQL and
    /// `table.column` on SQLite; use [`StoreError::is_unique_violation_on`] rather than matching it.
    #[error("unique constraint violated: {constraint}")]
    UniqueViolation { constraint: String },
    /// The database refused a write for another integrity reason (foreign key, check).
    #[error("integrity constraint violated: {0}")]
    Integrity(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("{0}")]
    Config(String),
}

impl StoreError {
    /// Whether this is a unique violation of `table.column` (index named `{table}_{column}_key`).
    pub fn is_unique_violation_on(&self, table: &str, column: &str) -> bool {
        match self {
            StoreError::UniqueViolation { constraint } => {
                constraint == &format!("{table}_{column}_key")
                    || constraint.contains(&format!("{table}.{column}"))
            }
            _ => false,
        }
    }

    /// A stored enum value (a status) read back. The table's CHECK admits only known values,
    /// so an unknown one means the row was written past it: an integrity error, not a panic.
    pub(crate) fn parse_stored<T: std::str::FromStr<Err = String>>(s: &str) -> Result<T, Self> {
        s.parse().map_err(StoreError::Integrity)
    }

    pub(crate) fn from_sqlx(e: sqlx::Error) -> Self {
        if let sqlx::Error::Database(db) = &e {
            if db.is_unique_violation() {
                let constraint = db
                    .constraint()
                    .map(str::to_owned)
                    .unwrap_or_else(|| db.message().to_owned());
                return StoreError::UniqueViolation { constraint };
            }
            if db.is_foreign_key_violation() || db.is_check_violation() {
                return StoreError::Integrity(db.message().to_owned());
            }
        }
        StoreError::Database(e)
    }
}
