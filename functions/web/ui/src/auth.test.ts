import { describe, expect, it } from "vitest";
import { authHeaders } from "./auth";

describe("auth headers", () => {
  it("send the token as Authorization: Bearer", () => {
    expect(authHeaders("s1_abc")).toEqual({ Authorization: "Bearer s1_abc" });
  });
  it("send nothing without a token", () => {
    expect(authHeaders(null)).toEqual({});
    expect(authHeaders("")).toEqual({});
  });
});
