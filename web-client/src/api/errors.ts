import { Code, ConnectError } from "@connectrpc/connect";

/** A failed call as the dashboard shows it: the gRPC code, the server's message, the request id. */
export interface ServerError {
  /** `UNIMPLEMENTED`, `PERMISSION_DENIED`, … */
  code: string;
  message: string;
  /** The `x-request-id` the server answered with (or the one the dashboard sent). */
  requestId?: string;
}

/** `Code.PermissionDenied` -> `PERMISSION_DENIED`. */
export function codeName(code: Code): string {
  return Code[code].replace(/([a-z])([A-Z])/g, "$1_$2").toUpperCase();
}

/** Any thrown value as a [`ServerError`]; grpc-web errors often arrive in headers only. */
export function describeError(error: unknown): ServerError {
  const connectError = ConnectError.from(error);
  return {
    code: codeName(connectError.code),
    message: connectError.rawMessage || "the request failed without a message",
    requestId: connectError.metadata.get("x-request-id") ?? undefined,
  };
}

/** Whether `error` is the server saying it has no such RPC yet. */
export function isUnimplemented(error: ServerError | undefined): boolean {
  return error?.code === "UNIMPLEMENTED";
}
