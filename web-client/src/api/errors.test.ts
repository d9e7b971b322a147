import { describe, expect, it } from "vitest";
import { Code, ConnectError } from "@connectrpc/connect";
import { describeError } from "./errors";

describe("describeError", () => {
  it.each([
    [Code.Unimplemented, "UNIMPLEMENTED"],
    [Code.PermissionDenied, "PERMISSION_DENIED"],
    [Code.Unauthenticated, "UNAUTHENTICATED"],
    [Code.ResourceExhausted, "RESOURCE_EXHAUSTED"],
  ])("names code %i %s", (code, name) => {
    expect(describeError(new ConnectError("no", code)).code).toBe(name);
  });

  it("keeps the server's message and request id", () => {
    const error = new ConnectError("campaigns are not implemented", Code.Unimplemented, { "x-request-id": "web-7" });
    expect(describeError(error)).toEqual({ code: "UNIMPLEMENTED", message: "campaigns are not implemented", requestId: "web-7" });
  });
});
