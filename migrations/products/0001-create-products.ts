import type { Migration } from "../../lib/database";

const migration: Migration = {
  name: "0001-create-products",
  async up({ sequelize }) {
    await sequelize.query(`
      CREATE TABLE products (
        id uuid PRIMARY KEY,
        sku varchar(64) NOT NULL,
        name varchar(200) NOT NULL,
        description text NOT NULL DEFAULT '',
        price_amount bigint NOT NULL CHECK (price_amount >= 0),
        currency char(3) NOT NULL,
        stock integer NOT NULL DEFAULT 0 CHECK (stock >= 0),
        active boolean NOT NULL DEFAULT true,
        version integer NOT NULL DEFAULT 1,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE UNIQUE INDEX products_sku_key ON products (sku);
      CREATE INDEX products_created_at_idx ON products (created_at);
    `);
  },
  async down({ sequelize }) {
    await sequelize.query("DROP TABLE products");
  },
};

export default migration;
