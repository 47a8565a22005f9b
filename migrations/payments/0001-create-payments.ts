import type { Migration } from "../../lib/database";

const migration: Migration = {
  name: "0001-create-payments",
  async up({ sequelize }) {
    await sequelize.query(`
      -- One row per charge key (a saga step): CHARGED, DECLINED, REFUNDED, or VOIDED when a refund came before any
      -- charge (a step that timed out), so a late charge for that key is refused instead of taken.
      CREATE TABLE payments (
        id uuid PRIMARY KEY,
        charge_key varchar(300) NOT NULL UNIQUE,
        order_id uuid,
        amount bigint,
        currency char(3),
        payment_method varchar(100),
        status varchar(16) NOT NULL CHECK (status IN ('CHARGED', 'DECLINED', 'REFUNDED', 'VOIDED')),
        reason text,
        created_at timestamptz NOT NULL DEFAULT now(),
        refunded_at timestamptz
      );
      CREATE INDEX payments_order_idx ON payments (order_id);
      -- Calls the simulated provider received per charge key (pm_card_flaky fails the first few).
      CREATE TABLE provider_calls (
        charge_key varchar(300) PRIMARY KEY,
        calls integer NOT NULL
      );
    `);
  },
};

export default migration;
