import type { Migration } from "../../lib/database";

/**
 * Rules, the operator tasks the built-in rules create, and the built-in rules themselves. Operators tune a built-in
 * rule (its threshold) or disable it through the rules API; they cannot delete it.
 */
const migration: Migration = {
  name: "0001-create-exec",
  async up({ sequelize }) {
    await sequelize.query(`
      CREATE TABLE rules (
        id uuid PRIMARY KEY,
        name varchar(200) NOT NULL UNIQUE,
        event varchar(200) NOT NULL,
        condition jsonb NOT NULL DEFAULT '[]',
        action varchar(200) NOT NULL,
        params jsonb NOT NULL DEFAULT '{}',
        enabled boolean NOT NULL DEFAULT true,
        built_in boolean NOT NULL DEFAULT false,
        version integer NOT NULL DEFAULT 1,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE INDEX rules_event_idx ON rules (event) WHERE enabled;
      CREATE TABLE tasks (
        id uuid PRIMARY KEY,
        kind varchar(64) NOT NULL,
        title varchar(500) NOT NULL,
        subject varchar(200),
        details jsonb NOT NULL DEFAULT '{}',
        idempotency_key varchar(300) NOT NULL UNIQUE,
        correlation_id text,
        status varchar(16) NOT NULL DEFAULT 'OPEN' CHECK (status IN ('OPEN', 'DONE')),
        created_at timestamptz NOT NULL DEFAULT now()
      );
      INSERT INTO rules (id, name, event, condition, action, params, built_in) VALUES (
        gen_random_uuid(), 'Review large orders', 'order.created',
        '[{"path": "$.payload.order.total.amount", "op": "gte", "value": 100000}]',
        'exec.tasks.create',
        '{"kind": "order-review", "title": "Review a large order", "subject": "$.payload.order.id",
          "details": {"total": "$.payload.order.total", "customerId": "$.payload.order.customerId"}}',
        true
      );
    `);
  },
  async down({ sequelize }) {
    await sequelize.query("DROP TABLE tasks; DROP TABLE rules");
  },
};

export default migration;
