/** The dlq database's migrations, in the order they run. Append; never edit one that has shipped. */
import createDeadLetters from "./0001-create-dead-letters";
import createInbox from "./0002-create-inbox";
import addDiscardReason from "./0003-add-discard-reason";
import addFingerprint from "./0004-add-fingerprint";
import createReplays from "./0005-create-replays";

export default [createDeadLetters, createInbox, addDiscardReason, addFingerprint, createReplays];
