import type { Migration } from "../../lib/database";

const migration: Migration = {
  name: "0003-create-stock-reservations",
  async up({ sequelize }) {
    await sequelize.query(`
      -- One row per reservation key (a saga step): the lines it took from stock and what became of them
      -- (lib/stock-reservation.ts). REJECTED keeps a refusal so a repeat answers it; VOIDED marks a release that
      -- came before any reserve, so a late reserve is refused.
      CREATE TABLE stock_reservations (
        reservation_key varchar(300) PRIMARY KEY,
        order_id uuid,
        lines jsonb NOT NULL DEFAULT '[]',
        status varchar(16) NOT NULL CHECK (status IN ('RESERVED', 'REJECTED', 'RELEASED', 'COMMITTED', 'VOIDED')),
        reason text,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE INDEX stock_reservations_order_idx ON stock_reservations (order_id);
    `);
  },
  async down({ sequelize }) {
    await sequelize.query("DROP TABLE stock_reservations");
  },
};

export default migration;
