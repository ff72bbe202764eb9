// The GitHub side of P2 as an @octokit/webhooks app: verifies X-Hub-Signature-256, and for each
// completed workflow_run commits one row keyed by X-GitHub-Delivery before answering.
import { createServer } from "node:http";
import { createRequire } from "node:module";
import { Webhooks, createNodeMiddleware } from "@octokit/webhooks";

const { open } = createRequire(import.meta.url)("./db.js");
const db = open(process.env.DB_PATH || "baseline.db", "deliveries");
const webhooks = new Webhooks({ secret: process.env.GITHUB_WEBHOOK_SECRET });

webhooks.on("workflow_run.completed", ({ id, payload }) => {
  const run = payload.workflow_run;
  db.record(id, JSON.stringify({ repository: payload.repository.full_name, sha: run.head_sha, conclusion: run.conclusion }));
});

const middleware = createNodeMiddleware(webhooks, { path: "/webhooks/github" });
createServer((req, res) => {
  if (req.method === "GET" && req.url === "/health") return res.end("ok");
  if (req.method === "GET" && req.url === "/count") return res.end(String(db.count()));
  middleware(req, res).then((handled) => {
    if (!handled) {
      res.statusCode = 404;
      res.end();
    }
  });
}).listen(Number(process.env.PORT || 3001), "127.0.0.1");
