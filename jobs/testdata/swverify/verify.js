// Verifies recorded BoohPay deliveries with the official standardwebhooks
// package. Reads a JSON array of {"secret", "headers", "body"} on stdin and
// writes a JSON array of the same length: null where the webhook-signature
// header verified, else the package's error. Run by jobs' Go tests
// (TestDeliveryVerifiesWithStandardWebhooksPackage), all cases in one run
// because node takes a while to start.
import sw from "standardwebhooks";

const { Webhook } = sw;

let input = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => (input += chunk));
process.stdin.on("end", () => {
  const results = JSON.parse(input).map(({ secret, headers, body }) => {
    // whsec_ secrets are base64 keys; any other secret's UTF-8 bytes are the key (SPEC §5).
    const wh = secret.startsWith("whsec_")
      ? new Webhook(secret)
      : new Webhook(new Uint8Array(Buffer.from(secret, "utf8")), { format: "raw" });
    try {
      wh.verify(body, headers);
      return null;
    } catch (err) {
      return `${err.name}: ${err.message}`;
    }
  });
  process.stdout.write(JSON.stringify(results) + "\n");
});
