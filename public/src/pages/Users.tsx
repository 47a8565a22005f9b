/** Users and roles (admins): list accounts, create one, change roles, disable and enable; add and edit roles. */
import { useState, type FormEvent } from "react";
import { api } from "../api/client";
import { describeError } from "../api/http";
import { useSession } from "../stores/session";
import { useApi } from "../api/useApi";
import { Guarded, Notice, InlineError } from "../components/States";
import { Badge, Button, Field, PageTitle, Pager, Section, Table, formatTime } from "../components/ui";
import type { Page } from "../../../lib/paging";
import type { Role, User } from "../../../contracts/auth";

export function UsersPage() {
  const [page, setPage] = useState(1);
  const users = useApi<Page<User>>(`/api/auth/users?page=${page}&pageSize=50`);
  // Roles are few: the list's default page holds them all.
  const roles = useApi<Page<Role>>("/api/auth/roles");
  const [message, setMessage] = useState<string | null>(null);
  const changed = (text: string) => {
    setMessage(text);
    users.reload();
  };
  return (
    <>
      <PageTitle>Users & roles</PageTitle>
      <div className="space-y-4">
        {message && <Notice tone="success">{message}</Notice>}
        <Guarded loaded={roles} what="roles">
          {({ rows: roleList }) => (
            <>
              <NewUser roles={roleList} onCreated={(email) => changed(`Created ${email}.`)} />
              <Section title="Users">
                <Guarded loaded={users} what="users" empty={(list) => (list.total === 0 ? "No users." : null)}>
                  {(list) => (
                    <>
                      <Table caption="Users" head={["Name", "Email", "Roles", "Status", "Since", ""]}>
                        {list.rows.map((user) => (
                          <UserRow key={user.id} user={user} roles={roleList} onChanged={changed} />
                        ))}
                      </Table>
                      <Pager page={list.page} totalPages={list.totalPages} onPage={setPage} />
                    </>
                  )}
                </Guarded>
              </Section>
              <RoleEditor
                roles={roleList}
                onSaved={(name) => {
                  setMessage(`Role ${name} saved.`);
                  roles.reload();
                }}
              />
            </>
          )}
        </Guarded>
      </div>
    </>
  );
}

/** Roles with their permissions; an admin edits one (or adds a new one) in place. */
function RoleEditor({ roles, onSaved }: { roles: Role[]; onSaved(name: string): void }) {
  const [form, setForm] = useState({ name: "", description: "", permissions: "" });
  const [error, setError] = useState<string | null>(null);
  async function save(event: FormEvent) {
    event.preventDefault();
    const permissions = form.permissions
      .split(",")
      .map((permission) => permission.trim())
      .filter(Boolean);
    try {
      await api("PUT", `/api/auth/roles/${encodeURIComponent(form.name)}`, {
        body: { description: form.description, permissions },
      });
      setError(null);
      onSaved(form.name);
    } catch (err) {
      setError(describeError(err));
    }
  }
  return (
    <Section title="Roles">
      <Table caption="Roles" head={["Role", "Description", "Permissions", ""]}>
        {roles.map((role) => (
          <tr key={role.name}>
            <td className="px-2 py-2 font-medium">{role.name}</td>
            <td className="px-2 py-2">{role.description}</td>
            <td className="px-2 py-2 font-mono text-xs">{role.permissions.join(", ")}</td>
            <td className="px-2 py-2">
              <Button
                variant="secondary"
                onClick={() =>
                  setForm({ name: role.name, description: role.description, permissions: role.permissions.join(", ") })
                }
              >
                Edit
              </Button>
            </td>
          </tr>
        ))}
      </Table>
      <form onSubmit={save} className="mt-3 flex flex-wrap items-end gap-3" aria-label="Role">
        <Field
          label="Role name"
          required
          value={form.name}
          onChange={(e) => setForm({ ...form, name: e.target.value })}
        />
        <Field
          label="Description"
          value={form.description}
          onChange={(e) => setForm({ ...form, description: e.target.value })}
        />
        <Field
          label="Permissions (comma-separated, e.g. orders:read:any, dlq:*)"
          value={form.permissions}
          onChange={(e) => setForm({ ...form, permissions: e.target.value })}
        />
        <Button type="submit">Save role</Button>
        <InlineError message={error} className="w-full" />
      </form>
    </Section>
  );
}

function RolePicker({
  roles,
  value,
  onChange,
  legend,
}: {
  roles: Role[];
  value: string[];
  onChange(next: string[]): void;
  legend: string;
}) {
  return (
    <fieldset className="flex flex-wrap gap-3 text-sm">
      <legend className="sr-only">{legend}</legend>
      {roles.map((role) => (
        <label key={role.name} className="flex items-center gap-1">
          <input
            type="checkbox"
            checked={value.includes(role.name)}
            onChange={(event) =>
              onChange(event.target.checked ? [...value, role.name] : value.filter((name) => name !== role.name))
            }
          />
          {role.name}
        </label>
      ))}
    </fieldset>
  );
}

function NewUser({ roles, onCreated }: { roles: Role[]; onCreated(email: string): void }) {
  const [form, setForm] = useState({ email: "", displayName: "", password: "" });
  const [chosen, setChosen] = useState<string[]>(["customer"]);
  const [error, setError] = useState<string | null>(null);
  async function create(event: FormEvent) {
    event.preventDefault();
    try {
      await api("POST", "/api/auth/users", { body: { ...form, roles: chosen } });
      setForm({ email: "", displayName: "", password: "" });
      setError(null);
      onCreated(form.email);
    } catch (err) {
      setError(describeError(err));
    }
  }
  return (
    <Section title="Create a user">
      <form onSubmit={create} className="flex flex-wrap items-end gap-3" aria-label="New user">
        <Field
          label="Email"
          type="email"
          required
          value={form.email}
          onChange={(e) => setForm({ ...form, email: e.target.value })}
        />
        <Field
          label="Name"
          required
          value={form.displayName}
          onChange={(e) => setForm({ ...form, displayName: e.target.value })}
        />
        <Field
          label="Password (10+ characters)"
          type="password"
          autoComplete="new-password"
          required
          minLength={10}
          value={form.password}
          onChange={(e) => setForm({ ...form, password: e.target.value })}
        />
        <RolePicker roles={roles} value={chosen} onChange={setChosen} legend="Roles of the new user" />
        <Button type="submit">Create</Button>
        <InlineError message={error} className="w-full" />
      </form>
    </Section>
  );
}

function UserRow({ user, roles, onChanged }: { user: User; roles: Role[]; onChanged(text: string): void }) {
  const [editing, setEditing] = useState(false);
  const [confirmingDisable, setConfirmingDisable] = useState(false);
  const [chosen, setChosen] = useState(user.roles);
  const [error, setError] = useState<string | null>(null);
  const isSelf = useSession((state) => state.user?.id) === user.id;
  async function patch(body: object, done: string) {
    try {
      await api("PATCH", `/api/auth/users/${user.id}`, { body });
      setEditing(false);
      setConfirmingDisable(false);
      setError(null);
      onChanged(done);
    } catch (err) {
      setError(describeError(err));
    }
  }
  return (
    <tr>
      <td className="px-2 py-2">{user.displayName}</td>
      <td className="px-2 py-2">{user.email}</td>
      <td className="px-2 py-2">
        {editing ? (
          <RolePicker roles={roles} value={chosen} onChange={setChosen} legend={`Roles of ${user.email}`} />
        ) : (
          user.roles.join(", ")
        )}
      </td>
      <td className="px-2 py-2">
        <Badge value={user.status} />
      </td>
      <td className="px-2 py-2">{formatTime(user.createdAt)}</td>
      <td className="px-2 py-2">
        <div className="flex flex-wrap gap-2">
          {editing ? (
            <>
              <Button onClick={() => void patch({ roles: chosen }, `Roles of ${user.email} saved.`)}>Save roles</Button>
              <Button variant="secondary" onClick={() => setEditing(false)}>
                Cancel
              </Button>
            </>
          ) : (
            <Button variant="secondary" onClick={() => setEditing(true)}>
              Edit roles
            </Button>
          )}
          {user.status !== "active" ? (
            <Button variant="secondary" onClick={() => void patch({ status: "active" }, `${user.email} enabled.`)}>
              Enable
            </Button>
          ) : isSelf ? (
            <span className="text-xs text-slate-500">Your own account cannot be disabled here.</span>
          ) : confirmingDisable ? (
            <span role="group" aria-label={`Disable ${user.email}?`} className="flex flex-wrap items-center gap-2">
              <span className="text-sm">Disable {user.email}? Their sessions end at once.</span>
              <Button variant="danger" onClick={() => void patch({ status: "disabled" }, `${user.email} disabled.`)}>
                Confirm disable
              </Button>
              <Button variant="secondary" onClick={() => setConfirmingDisable(false)}>
                Keep active
              </Button>
            </span>
          ) : (
            <Button variant="danger" onClick={() => setConfirmingDisable(true)}>
              Disable
            </Button>
          )}
        </div>
        <InlineError message={error} />
      </td>
    </tr>
  );
}
