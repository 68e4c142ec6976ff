-- The sample legacy schema of the demo and the tests: internal columns
-- (password_hash, internal_flags, etl_batch, updated_at) that the public
-- entities must never show.
CREATE TABLE public.customer (
    customer_id    bigserial PRIMARY KEY,
    email          text NOT NULL,
    first_name     text NOT NULL,
    last_name      text NOT NULL,
    password_hash  text NOT NULL DEFAULT md5(random()::text),
    balance        numeric(12,2) NOT NULL DEFAULT 0,
    birth_date     date,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    internal_flags integer NOT NULL DEFAULT 0
);
ALTER TABLE public.customer REPLICA IDENTITY FULL;

CREATE TABLE public.orders (
    order_id    uuid PRIMARY KEY,
    customer_id bigint NOT NULL REFERENCES public.customer ON DELETE CASCADE,
    status_code smallint NOT NULL,
    total       numeric(12,2) NOT NULL,
    note        text,
    placed_at   timestamptz NOT NULL DEFAULT now(),
    details     jsonb,
    etl_batch   integer
);
ALTER TABLE public.orders REPLICA IDENTITY FULL;

INSERT INTO public.customer (email, first_name, last_name, balance, birth_date, created_at) VALUES
    ('ada@example.com',    'Ada',    'Lovelace', 120.50, '1815-12-10', '2024-01-15 09:30:00+00'),
    ('alan@example.com',   'Alan',   'Turing',     0.00, '1912-06-23', '2024-02-01 14:00:00.123456+00'),
    ('grace@example.com',  'Grace',  'Hopper',  -15.25, NULL,          '2024-03-08 08:00:00+00');

INSERT INTO public.orders (order_id, customer_id, status_code, total, note, placed_at, details) VALUES
    ('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 1, 1, 99.90, 'gift wrap', '2024-04-01 10:00:00+00', '{"items": 2}'),
    ('b1ffcd88-8d1a-4ef8-bb6d-6bb9bd380a22', 2, 2, 15.00, NULL,        '2024-04-02 11:30:00+00', NULL);

-- The outbox: the shop application inserts here, in the same transaction as a
-- business change, each event it means to publish (the outbox pattern), and
-- deletes old rows now and then. Its rows are events, not state.
CREATE TABLE public.outbox (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    aggregatetype  text NOT NULL,
    aggregateid    text NOT NULL,
    type           text NOT NULL,
    payload        jsonb NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now()
);
