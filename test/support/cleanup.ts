/** Runs after each integration and e2e test file (jest setupFilesAfterEnv). */
import { killLeftoverNodes } from "../../support/nodes";

afterAll(() => killLeftoverNodes());
