// Starts the in-memory @firestore-emulator/server stand-in for the pytest suite.
//
// Usage: node serve.mjs [PORT] [HOST]
//   PORT defaults to $FIRESTORE_EMULATOR_PORT or 8080 (0 = let the OS choose);
//   HOST defaults to $FIRESTORE_EMULATOR_BIND or 127.0.0.1.
// Prints "FIRESTORE_EMULATOR_READY HOST:PORT" on stdout once the gRPC port is bound.
//
// The package's own FirestoreServer.start(port) always binds 0.0.0.0 and hides the
// port it got, so we bind its (TypeScript-private) grpc-js Server ourselves: tests
// only need loopback, and port 0 must report the real port. That field is stable in
// the pinned 0.3.15; if it ever disappears we fall back to start(port).
import { ServerCredentials } from "@grpc/grpc-js";
import { FirestoreServer } from "@firestore-emulator/server";

const port = Number(process.argv[2] ?? process.env.FIRESTORE_EMULATOR_PORT ?? 8080);
const host = process.argv[3] ?? process.env.FIRESTORE_EMULATOR_BIND ?? "127.0.0.1";
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`invalid port: ${process.argv[2]}`);
  process.exit(2);
}

const emulator = new FirestoreServer();
const grpcServer = emulator.server;

const bound = await (grpcServer?.bindAsync
  ? new Promise((resolve, reject) =>
      grpcServer.bindAsync(`${host}:${port}`, ServerCredentials.createInsecure(), (err, p) =>
        err ? reject(err) : resolve(p),
      ),
    )
  : emulator.start(port).then(() => port));

// The stand-in throws from a few code paths (unsupported transforms, listeners);
// keep serving so one bad request fails one test instead of the whole session.
process.on("uncaughtException", (err) => console.error("[firestore-emulator] uncaught:", err));
process.on("unhandledRejection", (err) => console.error("[firestore-emulator] unhandled:", err));

const shutdown = () => {
  emulator.stop();
  process.exit(0);
};
process.on("SIGTERM", shutdown);
process.on("SIGINT", shutdown);
// The test run holds our stdin open and never writes to it: end-of-file means it is gone
// (even killed outright), so do not outlive it. Started with stdin from /dev/null, that EOF
// comes at once, hence the opt-in flag.
if (process.env.FIRESTORE_EMULATOR_EXIT_ON_EOF === "1") {
  process.stdin.on("end", shutdown);
  process.stdin.resume();
}

console.log(`FIRESTORE_EMULATOR_READY ${host}:${bound}`);
