// The Slack side of P1/P6 as a Bolt-for-JS app: verifies the signature (Bolt's receiver), and
// for each Approve click commits one row (request, user, action_ts) before acknowledging.
const { App, HTTPReceiver } = require("@slack/bolt");
const { open } = require("./db");

const db = open(process.env.DB_PATH || "baseline.db", "clicks");
const receiver = new HTTPReceiver({
  signingSecret: process.env.SLACK_SIGNING_SECRET,
  endpoints: "/slack/interactions",
  customRoutes: [
    { path: "/health", method: ["GET"], handler: (_req, res) => res.end("ok") },
    { path: "/count", method: ["GET"], handler: (_req, res) => res.end(String(db.count())) },
  ],
});
// No auth.test at start (there is no Slack to ask): the bot's identity is given.
const app = new App({
  token: "xoxb-baseline",
  botId: "B0BASELINE",
  botUserId: "U0BASELINE",
  tokenVerificationEnabled: false,
  receiver,
  logLevel: "error",
});

app.action("approve", async ({ ack, body, action }) => {
  db.record(`${action.value}/${body.user.id}/${action.action_ts}`, JSON.stringify(action));
  await ack();
});

app.start(Number(process.env.PORT || 3000)).then(() => {
  console.error(`bolt baseline on ${process.env.PORT}`);
});
