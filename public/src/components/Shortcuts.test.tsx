import { act, fireEvent, render, screen } from "@testing-library/react";
import { Shortcuts } from "./Shortcuts";

function renderPage() {
  return render(
    <>
      <Shortcuts />
      <main id="main">
        <form>
          <input aria-label="Search" />
        </form>
        <table>
          <tbody>
            {["one", "two", "three"].map((name) => (
              <tr key={name}>
                <td>
                  <a href={`#${name}`}>{name}</a>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </main>
    </>,
  );
}

const press = (key: string, target: Element = document.body) => act(() => void fireEvent.keyDown(target, { key }));

describe("keyboard shortcuts", () => {
  it("go to the search field, move through the list's rows, and show their list", () => {
    renderPage();
    press("/");
    expect(document.activeElement).toBe(screen.getByLabelText("Search"));
    // Typed into a field, the keys are text.
    press("j", screen.getByLabelText("Search"));
    expect(document.activeElement).toBe(screen.getByLabelText("Search"));
    press("j");
    expect(document.activeElement).toBe(screen.getByText("one"));
    press("j", screen.getByText("one"));
    expect(document.activeElement).toBe(screen.getByText("two"));
    press("k", screen.getByText("two"));
    expect(document.activeElement).toBe(screen.getByText("one"));
    press("?");
    expect(screen.getByRole("dialog", { name: "Keyboard shortcuts" })).toBeTruthy();
    press("Escape");
    expect(screen.queryByRole("dialog")).toBeNull();
  });
});
