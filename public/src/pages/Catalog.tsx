/** The catalog: list, add, edit and disable products (a disabled product cannot be ordered). */
import { useState, type FormEvent } from "react";
import { api } from "../api/client";
import { describeError } from "../api/http";
import { useApi } from "../api/useApi";
import { Guarded, Notice, InlineError } from "../components/States";
import { Badge, Button, Field, PageTitle, Pager, Section, Table, formatMoney } from "../components/ui";
import type { Page } from "../../../lib/paging";
import type { Product } from "../../../contracts/products";

/** "12.50" → 1250 minor units, or null when it is not an amount. */
export function toMinorUnits(text: string): number | null {
  if (!/^\d+(\.\d{1,2})?$/.test(text.trim())) return null;
  const [whole, fraction = ""] = text.trim().split(".");
  return Number(whole) * 100 + Number(fraction.padEnd(2, "0"));
}

export function CatalogPage() {
  const [page, setPage] = useState(1);
  const loaded = useApi<Page<Product>>(`/api/products?page=${page}&pageSize=20`);
  const [message, setMessage] = useState<string | null>(null);
  return (
    <>
      <PageTitle>Catalog</PageTitle>
      <div className="space-y-4">
        <NewProduct
          onCreated={(name) => {
            setMessage(`Added ${name}.`);
            loaded.reload();
          }}
        />
        {message && <Notice tone="success">{message}</Notice>}
        <Section title="Products">
          <Guarded loaded={loaded} what="products" empty={(result) => (result.total === 0 ? "No products yet." : null)}>
            {(result) => (
              <>
                <Table caption="Products" head={["SKU", "Name", "Price", "Stock", "Status", ""]}>
                  {result.rows.map((product) => (
                    <ProductRow key={product.id} product={product} onChanged={loaded.reload} />
                  ))}
                </Table>
                <Pager page={result.page} totalPages={result.totalPages} onPage={setPage} />
              </>
            )}
          </Guarded>
        </Section>
      </div>
    </>
  );
}

function NewProduct({ onCreated }: { onCreated(name: string): void }) {
  const [form, setForm] = useState({ sku: "", name: "", price: "", currency: "EUR", stock: "0" });
  const [error, setError] = useState<string | null>(null);
  async function create(event: FormEvent) {
    event.preventDefault();
    const amount = toMinorUnits(form.price);
    if (amount === null) {
      setError("Price must be an amount like 12.50.");
      return;
    }
    try {
      await api("POST", "/api/products", {
        body: { sku: form.sku, name: form.name, price: { amount, currency: form.currency }, stock: Number(form.stock) },
      });
      setForm({ sku: "", name: "", price: "", currency: form.currency, stock: "0" });
      setError(null);
      onCreated(form.name);
    } catch (err) {
      setError(describeError(err));
    }
  }
  return (
    <Section title="Add a product">
      <form onSubmit={create} className="flex flex-wrap items-end gap-3" aria-label="New product">
        <Field label="SKU" required value={form.sku} onChange={(e) => setForm({ ...form, sku: e.target.value })} />
        <Field label="Name" required value={form.name} onChange={(e) => setForm({ ...form, name: e.target.value })} />
        <Field
          label="Price"
          required
          inputMode="decimal"
          value={form.price}
          onChange={(e) => setForm({ ...form, price: e.target.value })}
        />
        <Field
          label="Currency"
          required
          maxLength={3}
          value={form.currency}
          onChange={(e) => setForm({ ...form, currency: e.target.value.toUpperCase() })}
        />
        <Field
          label="Stock"
          type="number"
          min={0}
          value={form.stock}
          onChange={(e) => setForm({ ...form, stock: e.target.value })}
        />
        <Button type="submit">Add</Button>
        <InlineError message={error} className="w-full" />
      </form>
    </Section>
  );
}

function ProductRow({ product, onChanged }: { product: Product; onChanged(): void }) {
  const [editing, setEditing] = useState(false);
  const [form, setForm] = useState({
    name: product.name,
    price: (product.price.amount / 100).toFixed(2),
    stock: String(product.stock),
  });
  const [error, setError] = useState<string | null>(null);

  async function patch(body: object) {
    try {
      // If-Match: someone else's change since this list was loaded is not overwritten (409 instead).
      await api("PATCH", `/api/products/${product.id}`, { body, headers: { "if-match": `"${product.version}"` } });
      setEditing(false);
      setError(null);
      onChanged();
    } catch (err) {
      setError(describeError(err));
    }
  }

  return (
    <tr>
      <td className="px-2 py-2 font-mono text-xs">{product.sku}</td>
      <td className="px-2 py-2">
        {editing ? (
          <Field label="Name" value={form.name} onChange={(e) => setForm({ ...form, name: e.target.value })} />
        ) : (
          product.name
        )}
      </td>
      <td className="px-2 py-2">
        {editing ? (
          <Field label="Price" value={form.price} onChange={(e) => setForm({ ...form, price: e.target.value })} />
        ) : (
          formatMoney(product.price)
        )}
      </td>
      <td className="px-2 py-2">
        {editing ? (
          <Field
            label="Stock"
            type="number"
            min={0}
            value={form.stock}
            onChange={(e) => setForm({ ...form, stock: e.target.value })}
          />
        ) : (
          product.stock
        )}
      </td>
      <td className="px-2 py-2">
        <Badge value={product.active ? "active" : "disabled"} />
      </td>
      <td className="px-2 py-2">
        <div className="flex flex-wrap gap-2">
          {editing ? (
            <>
              <Button
                onClick={() => {
                  const amount = toMinorUnits(form.price);
                  if (amount === null) return setError("Price must be an amount like 12.50.");
                  // Only what changed: a stock sent unchanged would still read as a stock change to whoever watches.
                  const changes = {
                    ...(form.name !== product.name ? { name: form.name } : {}),
                    ...(amount !== product.price.amount ? { price: { amount, currency: product.price.currency } } : {}),
                    ...(Number(form.stock) !== product.stock ? { stock: Number(form.stock) } : {}),
                  };
                  if (Object.keys(changes).length === 0) return setEditing(false);
                  void patch(changes);
                }}
              >
                Save
              </Button>
              <Button variant="secondary" onClick={() => setEditing(false)}>
                Cancel
              </Button>
            </>
          ) : (
            <Button variant="secondary" onClick={() => setEditing(true)}>
              Edit
            </Button>
          )}
          <Button variant="secondary" onClick={() => void patch({ active: !product.active })}>
            {product.active ? "Disable" : "Enable"}
          </Button>
        </div>
        <InlineError message={error} />
      </td>
    </tr>
  );
}
