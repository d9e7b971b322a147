import { createStore } from "zustand/vanilla";
import { useStore } from "zustand";
import type { Client } from "@connectrpc/connect";
import { Role, type AuthService } from "../gen/crmbet/v1/auth_pb";
import { describeError, type ServerError } from "../api/errors";

/** The calls the session needs; the generated AuthService client has them. */
export type AuthApi = Pick<Client<typeof AuthService>, "login" | "refresh" | "logout">;

/** Timers, injectable so tests advance time without waiting. */
export interface Clock {
  now(): number;
  setTimeout(callback: () => void, delayMs: number): unknown;
  clearTimeout(handle: unknown): void;
}

const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (callback, delayMs) => globalThis.setTimeout(callback, delayMs),
  clearTimeout: (handle) => globalThis.clearTimeout(handle as ReturnType<typeof setTimeout>),
};

/** How long before expiry the access token is refreshed. */
export const REFRESH_MARGIN_MS = 60_000;
/** Never refresh more often than this, whatever the server's `expires_in`. */
export const MINIMUM_REFRESH_DELAY_MS = 5_000;

export type SessionStatus = "anonymous" | "signing-in" | "signed-in";

export interface SessionState {
  status: SessionStatus;
  username?: string;
  role: Role;
  /** In memory only: never in storage, cookies or the URL. */
  accessToken?: string;
  refreshToken?: string;
  expiresAtMs?: number;
  /** Why the last login or refresh failed, or why the session ended. */
  error?: ServerError;
  login(username: string, password: string): Promise<boolean>;
  refresh(): Promise<boolean>;
  logout(): Promise<void>;
  /**
   * Refreshes now when the access token is within the refresh margin of its expiry: for a
   * tab coming back from the background, where browsers delay timers.
   */
  refreshIfDue(): Promise<void>;
  /** Forgets the session after the server refused its token (UNAUTHENTICATED). */
  expire(error: ServerError): void;
}

interface Tokens {
  accessToken: string;
  refreshToken: string;
  expiresIn: bigint;
  role: Role;
}

/** The refresh delay for a token that lives `expiresInSeconds`. */
export function refreshDelayMs(expiresInSeconds: number): number {
  return Math.max(MINIMUM_REFRESH_DELAY_MS, expiresInSeconds * 1000 - REFRESH_MARGIN_MS);
}

/** The session store over `auth`: login, silent refresh before expiry, logout. */
export function createSessionStore(auth: AuthApi, clock: Clock = systemClock) {
  let refreshTimer: unknown;
  const cancelRefresh = () => {
    if (refreshTimer !== undefined) clock.clearTimeout(refreshTimer);
    refreshTimer = undefined;
  };

  const store = createStore<SessionState>()((set, get) => {
    const signedOut = {
      status: "anonymous" as const,
      accessToken: undefined,
      refreshToken: undefined,
      expiresAtMs: undefined,
      role: Role.UNSPECIFIED,
    };

    const adopt = (tokens: Tokens) => {
      const expiresInSeconds = Number(tokens.expiresIn);
      cancelRefresh();
      refreshTimer = clock.setTimeout(() => {
        void get().refresh();
      }, refreshDelayMs(expiresInSeconds));
      set({
        status: "signed-in",
        accessToken: tokens.accessToken,
        refreshToken: tokens.refreshToken,
        expiresAtMs: clock.now() + expiresInSeconds * 1000,
        role: tokens.role,
        error: undefined,
      });
    };

    return {
      ...signedOut,
      async login(username, password) {
        set({ status: "signing-in", error: undefined });
        try {
          adopt(await auth.login({ username, password }));
          set({ username });
          return true;
        } catch (error) {
          set({ ...signedOut, error: describeError(error) });
          return false;
        }
      },
      async refresh() {
        const refreshToken = get().refreshToken;
        if (!refreshToken) return false;
        try {
          adopt(await auth.refresh({ refreshToken }));
          return true;
        } catch (error) {
          cancelRefresh();
          set({ ...signedOut, username: undefined, error: describeError(error) });
          return false;
        }
      },
      async refreshIfDue() {
        const { status, expiresAtMs } = get();
        if (status !== "signed-in" || expiresAtMs === undefined) return;
        if (expiresAtMs - clock.now() > REFRESH_MARGIN_MS) return;
        await get().refresh();
      },
      async logout() {
        const refreshToken = get().refreshToken;
        cancelRefresh();
        try {
          if (refreshToken) await auth.logout({ refreshToken });
        } finally {
          set({ ...signedOut, username: undefined, error: undefined });
        }
      },
      expire(error) {
        cancelRefresh();
        set({ ...signedOut, username: undefined, error });
      },
    };
  });

  return Object.assign(<Selected>(selector: (state: SessionState) => Selected) => useStore(store, selector), store);
}

/** What a role may do in the dashboard; the server's permission table is the authority. */
export function capabilities(role: Role) {
  return {
    /** Models and training runs: start, watch, list, activate (marketers see none of it). */
    train: role === Role.ADMIN || role === Role.ANALYST,
    editCampaigns: role === Role.ADMIN || role === Role.MARKETER,
    launchCampaigns: role === Role.ADMIN || role === Role.MARKETER,
  };
}

/** `Role.ANALYST` -> `analyst`. */
export function roleName(role: Role): string {
  return Role[role]?.toLowerCase() ?? "unknown";
}
