import type { Migration } from "../../lib/database";

const migration: Migration = {
  name: "0001-create-orders",
  async up({ sequelize }) {
    await sequelize.query(`
      CREATE TABLE orders (
        id uuid PRIMARY KEY,
        customer_id uuid NOT NULL,
        status varchar(16) NOT NULL
          CHECK (status IN ('PENDING', 'PAID', 'SHIPPED', 'COMPLETED', 'CANCELLED', 'COMPENSATED', 'FAILED')),
        status_reason text,
        currency char(3) NOT NULL,
        total_amount bigint NOT NULL CHECK (total_amount >= 0),
        shipping_address jsonb NOT NULL,
        payment_method varchar(64) NOT NULL,
        idempotency_key varchar(255),
        request_hash char(64),
        version integer NOT NULL DEFAULT 1,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE UNIQUE INDEX orders_idempotency_key ON orders (customer_id, idempotency_key);
      CREATE INDEX orders_customer_created_idx ON orders (customer_id, created_at DESC);
      CREATE INDEX orders_status_created_idx ON orders (status, created_at DESC);
      CREATE TABLE order_lines (
        order_id uuid NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
        line_no smallint NOT NULL,
        product_id uuid NOT NULL,
        sku varchar(64) NOT NULL,
        name varchar(200) NOT NULL,
        quantity integer NOT NULL CHECK (quantity > 0),
        unit_price_amount bigint NOT NULL CHECK (unit_price_amount >= 0),
        PRIMARY KEY (order_id, line_no)
      );
    `);
  },
  async down({ sequelize }) {
    await sequelize.query("DROP TABLE order_lines, orders");
  },
};

export default migration;
