import { Code, ConnectError, type Interceptor, type Transport } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";

/** Where the access token comes from at the moment of each call. */
export type AccessTokenSource = () => string | undefined;

/** A fresh id per call, sent as `x-request-id` so an error can be quoted to the operator. */
export function newRequestId(): string {
  return `web-${crypto.randomUUID()}`;
}

/** Called when the server refuses a token the dashboard sent (the session ended). */
export type TokenRefused = (error: ConnectError) => void;

/**
 * Adds `authorization: Bearer …` (when signed in) and `x-request-id` to every call, and
 * reports an UNAUTHENTICATED answer to a call that carried a token.
 */
export function authorizationInterceptor(
  accessToken: AccessTokenSource,
  tokenRefused: TokenRefused,
): Interceptor {
  return (next) => async (request) => {
    const token = accessToken();
    if (token) {
      request.header.set("authorization", `Bearer ${token}`);
    }
    if (!request.header.has("x-request-id")) {
      request.header.set("x-request-id", newRequestId());
    }
    try {
      return await next(request);
    } catch (error) {
      if (token && error instanceof ConnectError && error.code === Code.Unauthenticated) {
        tokenRefused(error);
      }
      throw error;
    }
  };
}

/** grpc-web in binary mode to `baseUrl` (the page's own origin in production). */
export function createTransport(
  baseUrl: string,
  accessToken: AccessTokenSource,
  tokenRefused: TokenRefused,
): Transport {
  return createGrpcWebTransport({
    baseUrl,
    useBinaryFormat: true,
    interceptors: [authorizationInterceptor(accessToken, tokenRefused)],
  });
}
