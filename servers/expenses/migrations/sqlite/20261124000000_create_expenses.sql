-- Amounts are integer minor units (cents for USD) with an ISO 4217 code; dates are
-- YYYY-MM-DD text in UTC. The same columns exist on PostgreSQL.
CREATE TABLE expenses (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    spent_on TEXT NOT NULL
        CHECK (spent_on GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]'),
    amount_minor INTEGER NOT NULL CHECK (amount_minor > 0),
    currency TEXT NOT NULL CHECK (length(currency) = 3),
    category TEXT NOT NULL CHECK (length(category) BETWEEN 1 AND 64),
    description TEXT NOT NULL CHECK (length(description) <= 500)
);

CREATE INDEX expenses_by_date ON expenses (spent_on DESC, id DESC);
CREATE INDEX expenses_by_category ON expenses (category, spent_on DESC, id DESC);
