import type { Migration } from "../../lib/database";

const migration: Migration = {
  name: "0001-create-shipments",
  async up({ sequelize }) {
    await sequelize.query(`
      -- One row per shipment key (a saga step): CREATED, CANCELLED, or VOIDED when a cancel came before the shipment.
      CREATE TABLE shipments (
        id uuid PRIMARY KEY,
        shipment_key varchar(300) NOT NULL UNIQUE,
        order_id uuid,
        country char(2),
        address jsonb,
        status varchar(16) NOT NULL CHECK (status IN ('CREATED', 'CANCELLED', 'VOIDED')),
        created_at timestamptz NOT NULL DEFAULT now(),
        cancelled_at timestamptz
      );
      CREATE INDEX shipments_order_idx ON shipments (order_id);
    `);
  },
};

export default migration;
