/** Orders: filter and page through them, and place one (operators can try every test payment method). */
import { useState, type FormEvent } from "react";
import { Link, useNavigate } from "react-router";
import { api } from "../api/client";
import { describeError } from "../api/http";
import { useApi } from "../api/useApi";
import { useFilters } from "../components/useFilters";
import { NewRows } from "../components/NewRows";
import { Guarded, InlineError } from "../components/States";
import {
  Badge,
  Button,
  Field,
  PageTitle,
  Pager,
  Section,
  Select,
  Table,
  formatMoney,
  formatTime,
} from "../components/ui";
import { useSession } from "../stores/session";
import type { Page } from "../../../lib/paging";
import { ORDER_STATUSES, type Order } from "../../../contracts/orders";
import type { Product } from "../../../contracts/products";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Goes straight to an order whose id the operator has (from a log line, a dead letter, a customer). */
function FindOrder() {
  const navigate = useNavigate();
  const [id, setId] = useState("");
  const [error, setError] = useState<string | null>(null);
  return (
    <form
      aria-label="Find an order"
      className="mb-3 flex flex-wrap items-end gap-2"
      onSubmit={(event) => {
        event.preventDefault();
        const wanted = id.trim();
        if (!UUID.test(wanted)) return setError("An order id is a UUID, like 3f2c…-….");
        setError(null);
        navigate(`/orders/${wanted.toLowerCase()}`);
      }}
    >
      <Field label="Order id" value={id} onChange={(event) => setId(event.target.value)} placeholder="uuid" />
      <Button type="submit" variant="secondary">
        Open
      </Button>
      <InlineError message={error} />
    </form>
  );
}

export const PAYMENT_METHODS = [
  { value: "pm_card_ok", label: "Card (succeeds)" },
  { value: "pm_card_declined", label: "Card (declined)" },
  { value: "pm_card_flaky", label: "Card (fails twice, then succeeds)" },
  { value: "pm_card_slow", label: "Card (provider too slow)" },
];

export function OrdersPage() {
  const [params, setFilter] = useFilters();
  const canSeeAll = useSession((state) => state.can("orders:read:any"));
  const canCreate = useSession((state) => state.can("orders:create"));
  const query = new URLSearchParams();
  for (const key of ["status", "customerId", "from", "to", "page"]) {
    const value = params.get(key);
    if (value) query.set(key, key === "from" || key === "to" ? new Date(value).toISOString() : value);
  }
  const loaded = useApi<Page<Order>>(`/api/orders?${query}`);

  return (
    <>
      <PageTitle>Orders</PageTitle>
      <div className="space-y-6">
        {canCreate && <NewOrder onPlaced={loaded.reload} />}
        <Section title="All orders">
          <FindOrder />
          <form className="mb-3 flex flex-wrap gap-3" onSubmit={(event) => event.preventDefault()} aria-label="Filters">
            <Select
              label="Status"
              value={params.get("status") ?? ""}
              onChange={(event) => setFilter("status", event.target.value)}
              options={[
                { value: "", label: "Any" },
                ...ORDER_STATUSES.map((status) => ({ value: status, label: status })),
              ]}
            />
            {canSeeAll && (
              <Field
                label="Customer id"
                value={params.get("customerId") ?? ""}
                onChange={(event) => setFilter("customerId", event.target.value.trim())}
                placeholder="uuid"
              />
            )}
            <Field
              label="Placed from"
              type="date"
              value={params.get("from") ?? ""}
              onChange={(e) => setFilter("from", e.target.value)}
            />
            <Field
              label="Placed before"
              type="date"
              value={params.get("to") ?? ""}
              onChange={(e) => setFilter("to", e.target.value)}
            />
          </form>
          <Guarded loaded={loaded} what="orders" empty={(page) => (page.total === 0 ? "No orders match." : null)}>
            {(page) => (
              <>
                <NewRows path={`/api/orders?${query}`} shown={page} onShow={loaded.reload} />
                <Table caption="Orders" head={["Order", "Status", "Why", "Customer", "Total", "Payment", "Placed"]}>
                  {page.rows.map((order) => (
                    <tr key={order.id}>
                      <td className="px-2 py-2">
                        <Link
                          className="font-mono text-xs break-all text-blue-800 underline"
                          to={`/orders/${order.id}`}
                        >
                          {order.id}
                        </Link>
                      </td>
                      <td className="px-2 py-2">
                        <Badge value={order.status} />
                      </td>
                      <td className="px-2 py-2 text-xs">{order.statusReason ?? ""}</td>
                      <td className="px-2 py-2 text-xs">
                        {order.shippingAddress.name}
                        {canSeeAll && (
                          <>
                            <br />
                            <button
                              type="button"
                              className="font-mono break-all text-blue-800 underline"
                              title="Show this customer's orders"
                              onClick={() => setFilter("customerId", order.customerId)}
                            >
                              {order.customerId}
                            </button>
                          </>
                        )}
                      </td>
                      <td className="px-2 py-2">{formatMoney(order.total)}</td>
                      <td className="px-2 py-2">{order.paymentMethod}</td>
                      <td className="px-2 py-2">{formatTime(order.createdAt)}</td>
                    </tr>
                  ))}
                </Table>
                <Pager page={page.page} totalPages={page.totalPages} onPage={(n) => setFilter("page", String(n))} />
              </>
            )}
          </Guarded>
        </Section>
      </div>
    </>
  );
}

function NewOrder({ onPlaced }: { onPlaced(): void }) {
  const products = useApi<Page<Product>>("/api/products?pageSize=100");
  const navigate = useNavigate();
  const [quantities, setQuantities] = useState<Record<string, number>>({});
  const [paymentMethod, setPaymentMethod] = useState("pm_card_ok");
  const [address, setAddress] = useState({ name: "", street: "", city: "", postalCode: "", country: "DE" });
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  async function place(event: FormEvent) {
    event.preventDefault();
    const items = Object.entries(quantities)
      .filter(([, quantity]) => quantity > 0)
      .map(([productId, quantity]) => ({ productId, quantity }));
    if (items.length === 0) {
      setError("Choose at least one product.");
      return;
    }
    setBusy(true);
    setError(null);
    try {
      const order = await api<Order>("POST", "/api/orders", {
        body: { items, shippingAddress: address, paymentMethod },
        headers: { "idempotency-key": crypto.randomUUID() },
      });
      onPlaced();
      navigate(`/orders/${order.id}`);
    } catch (err) {
      setError(describeError(err));
    } finally {
      setBusy(false);
    }
  }

  return (
    <Section title="Place an order">
      <Guarded
        loaded={products}
        what="products"
        empty={(page) => (page.rows.length === 0 ? "No products to order yet." : null)}
      >
        {(page) => (
          <form onSubmit={place} className="space-y-3" aria-label="New order">
            <fieldset className="grid grid-cols-1 gap-2 sm:grid-cols-2 lg:grid-cols-3">
              <legend className="mb-1 text-sm font-medium">Products and quantities</legend>
              {page.rows
                .filter((product) => product.active)
                .map((product) => (
                  <Field
                    key={product.id}
                    label={`${product.name} (${formatMoney(product.price)}, ${product.stock} in stock)`}
                    type="number"
                    min={0}
                    max={product.stock}
                    value={quantities[product.id] ?? 0}
                    onChange={(event) => setQuantities({ ...quantities, [product.id]: Number(event.target.value) })}
                  />
                ))}
            </fieldset>
            <div className="grid grid-cols-1 gap-2 sm:grid-cols-3 lg:grid-cols-6">
              <Field
                label="Name"
                required
                value={address.name}
                onChange={(e) => setAddress({ ...address, name: e.target.value })}
              />
              <Field
                label="Street"
                required
                value={address.street}
                onChange={(e) => setAddress({ ...address, street: e.target.value })}
              />
              <Field
                label="City"
                required
                value={address.city}
                onChange={(e) => setAddress({ ...address, city: e.target.value })}
              />
              <Field
                label="Postal code"
                required
                value={address.postalCode}
                onChange={(e) => setAddress({ ...address, postalCode: e.target.value })}
              />
              <Field
                label="Country (2 letters; ZZ cannot be shipped to)"
                required
                maxLength={2}
                value={address.country}
                onChange={(e) => setAddress({ ...address, country: e.target.value.toUpperCase() })}
              />
              <Select
                label="Payment method"
                value={paymentMethod}
                onChange={(e) => setPaymentMethod(e.target.value)}
                options={PAYMENT_METHODS}
              />
            </div>
            <InlineError message={error} />
            <Button type="submit" disabled={busy}>
              {busy ? "Placing…" : "Place order"}
            </Button>
          </form>
        )}
      </Guarded>
    </Section>
  );
}
