-- The sample legacy schema of shop.sql in MySQL's dialect, with the same
-- internal columns (password_hash, internal_flags, updated_at) that the public
-- entity must never show.
CREATE TABLE customer (
    customer_id    bigint NOT NULL AUTO_INCREMENT PRIMARY KEY,
    email          varchar(255) NOT NULL,
    first_name     varchar(100) NOT NULL,
    last_name      varchar(100) NOT NULL,
    password_hash  char(32) NOT NULL DEFAULT (md5(rand())),
    balance        decimal(12,2) NOT NULL DEFAULT 0,
    birth_date     date NULL,
    created_at     timestamp(6) NOT NULL DEFAULT current_timestamp(6),
    updated_at     timestamp(6) NOT NULL DEFAULT current_timestamp(6) ON UPDATE current_timestamp(6),
    internal_flags int NOT NULL DEFAULT 0
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;

INSERT INTO customer (email, first_name, last_name, balance, birth_date, created_at) VALUES
    ('ada@example.com',    'Ada',    'Lovelace', 120.50, '1815-12-10', '2024-01-15 09:30:00'),
    ('alan@example.com',   'Alan',   'Turing',     0.00, '1912-06-23', '2024-02-01 14:00:00.123456'),
    ('grace@example.com',  'Grace',  'Hopper',  -15.25, NULL,          '2024-03-08 08:00:00');

-- The outbox: the shop application inserts here, in the same transaction as a
-- business change, each event it means to publish (the outbox pattern).
CREATE TABLE outbox (
    id             bigint NOT NULL AUTO_INCREMENT PRIMARY KEY,
    aggregatetype  varchar(64) NOT NULL,
    aggregateid    varchar(64) NOT NULL,
    type           varchar(64) NOT NULL,
    payload        json NOT NULL,
    created_at     timestamp(6) NOT NULL DEFAULT current_timestamp(6)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;
