import { describe, expect, it, vi } from "vitest";
import { Code, ConnectError } from "@connectrpc/connect";
import { Role } from "../gen/crmbet/v1/auth_pb";
import { capabilities, createSessionStore, refreshDelayMs, type AuthApi, type Clock } from "./session";

/** A clock whose timers run only when the test advances it. */
function manualClock(): Clock & { advance(ms: number): void; jump(ms: number): void; pending(): number } {
  let now = 1_000_000;
  let timers: { due: number; callback: () => void; id: number }[] = [];
  let nextId = 0;
  return {
    now: () => now,
    setTimeout(callback, delayMs) {
      nextId += 1;
      timers.push({ due: now + delayMs, callback, id: nextId });
      return nextId;
    },
    clearTimeout(handle) {
      timers = timers.filter((timer) => timer.id !== handle);
    },
    advance(ms) {
      now += ms;
      const due = timers.filter((timer) => timer.due <= now);
      timers = timers.filter((timer) => timer.due > now);
      due.forEach((timer) => timer.callback());
    },
    /** Moves time without running timers, as in a background tab. */
    jump(ms) {
      now += ms;
    },
    pending: () => timers.length,
  };
}

function tokens(suffix: string) {
  return { accessToken: `access-${suffix}`, refreshToken: `refresh-${suffix}`, expiresIn: 900n, role: Role.ANALYST };
}

function fakeAuth(overrides: Partial<AuthApi> = {}) {
  return {
    login: vi.fn(async () => tokens("1")),
    refresh: vi.fn(async () => tokens("2")),
    logout: vi.fn(async () => ({})),
    ...overrides,
  } as unknown as AuthApi & Record<"login" | "refresh" | "logout", ReturnType<typeof vi.fn>>;
}

describe("session store", () => {
  it("keeps the tokens in memory after login", async () => {
    const auth = fakeAuth();
    const session = createSessionStore(auth, manualClock());
    expect(await session.getState().login("ana", "secret password")).toBe(true);
    const state = session.getState();
    expect(state).toMatchObject({ status: "signed-in", username: "ana", role: Role.ANALYST, accessToken: "access-1" });
    expect(auth.login).toHaveBeenCalledWith({ username: "ana", password: "secret password" });
  });

  it("refreshes silently a minute before expiry", async () => {
    const auth = fakeAuth();
    const clock = manualClock();
    const session = createSessionStore(auth, clock);
    await session.getState().login("ana", "secret password");
    clock.advance(900_000 - 60_001);
    expect(auth.refresh).not.toHaveBeenCalled();
    clock.advance(1);
    expect(auth.refresh).toHaveBeenCalledWith({ refreshToken: "refresh-1" });
    await vi.waitFor(() => expect(session.getState().accessToken).toBe("access-2"));
    expect(clock.pending()).toBe(1);
  });

  it("refreshes on return only when the token is about to expire", async () => {
    const auth = fakeAuth();
    const clock = manualClock();
    const session = createSessionStore(auth, clock);
    await session.getState().login("ana", "secret password");
    await session.getState().refreshIfDue();
    expect(auth.refresh).not.toHaveBeenCalled();
    clock.jump(900_000 - 30_000);
    await session.getState().refreshIfDue();
    expect(auth.refresh).toHaveBeenCalledTimes(1);
    expect(session.getState().accessToken).toBe("access-2");
  });

  it("ends the session when the refresh is refused", async () => {
    const auth = fakeAuth({
      refresh: vi.fn(async () => {
        throw new ConnectError("this login session was ended", Code.Unauthenticated);
      }),
    });
    const clock = manualClock();
    const session = createSessionStore(auth, clock);
    await session.getState().login("ana", "secret password");
    expect(await session.getState().refresh()).toBe(false);
    expect(session.getState()).toMatchObject({ status: "anonymous", accessToken: undefined, refreshToken: undefined });
    expect(session.getState().error?.code).toBe("UNAUTHENTICATED");
    expect(clock.pending()).toBe(0);
  });

  it("logs out on the server and forgets the tokens", async () => {
    const auth = fakeAuth();
    const clock = manualClock();
    const session = createSessionStore(auth, clock);
    await session.getState().login("ana", "secret password");
    await session.getState().logout();
    expect(auth.logout).toHaveBeenCalledWith({ refreshToken: "refresh-1" });
    expect(session.getState()).toMatchObject({ status: "anonymous", accessToken: undefined, username: undefined });
    expect(clock.pending()).toBe(0);
  });

  it("reports a failed login with the server's message", async () => {
    const auth = fakeAuth({
      login: vi.fn(async () => {
        throw new ConnectError("wrong username or password", Code.Unauthenticated);
      }),
    });
    const session = createSessionStore(auth, manualClock());
    expect(await session.getState().login("ana", "wrong")).toBe(false);
    expect(session.getState().error).toMatchObject({ code: "UNAUTHENTICATED", message: "wrong username or password" });
  });

  it.each([
    [900, 840_000],
    [60, 5_000],
    [1, 5_000],
  ])("refreshes a token of %i s after %i ms", (expiresInSeconds, delayMs) => {
    expect(refreshDelayMs(expiresInSeconds)).toBe(delayMs);
  });
});

describe("capabilities", () => {
  it.each([
    [Role.ADMIN, { train: true, editCampaigns: true, launchCampaigns: true }],
    [Role.ANALYST, { train: true, editCampaigns: false, launchCampaigns: false }],
    [Role.MARKETER, { train: false, editCampaigns: true, launchCampaigns: true }],
    [Role.SERVICE, { train: false, editCampaigns: false, launchCampaigns: false }],
  ])("role %i may do %o", (role, expected) => {
    expect(capabilities(role)).toEqual(expected);
  });
});
