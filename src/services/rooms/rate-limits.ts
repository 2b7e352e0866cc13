/**
 * The rate limits on what users do in rooms, as Synapse applies them:
 *
 * - `rc_message`: every event a user's request sends (messages, state,
 *   redactions, membership changes), per user. A per-user override from
 *   the admin API replaces its rate and burst (0 exempts). Redactions of
 *   someone else's event count against `rc_admin_redaction` instead, when
 *   that is set.
 * - `rc_room_creation`: /createRoom and room upgrades, per user; each also
 *   counts once against rc_message (the room's own events do not).
 * - `rc_joins.local`: joins by a user who is not already joined, per user;
 *   `rc_joins_per_room`: no new local joins while the room has had too many
 *   joins recently (every join event persisted in it counts).
 * - `rc_invites`: an invite counts against `per_room` (the room),
 *   `per_user` (the invitee) and `per_issuer` (the inviter); /createRoom
 *   with more invitees than `per_room` allows at once is 400.
 *
 * Server-made changes (profile updates, deactivation, alias clean-up) are
 * not limited, as in Synapse. Server admins are limited like everyone
 * else unless an override exempts them (Synapse has no admin exemption).
 */
import type { HomeserverConfig, RateLimitConfig } from '../../config/types.js';
import { MatrixError } from '../../matrix-error.js';
import type { RateLimiter } from '../rate-limit.js';

export type RoomLimitConfig = Pick<HomeserverConfig, 'rc_message' | 'rc_admin_redaction' | 'rc_room_creation' | 'rc_joins' | 'rc_joins_per_room' | 'rc_invites'>;

export class RoomRateLimits {
  constructor(
    private readonly limiter: RateLimiter,
    private readonly cfg: RoomLimitConfig,
  ) {}

  /**
   * rc_message for one event sent by `userId` (or rc_admin_redaction for a
   * redaction of another user's event, when configured). With `update`
   * false it only asks.
   */
  message(userId: string, opts: { adminRedaction?: boolean; update?: boolean } = {}): void {
    const { key, cfg } = this.messageBucket(userId, opts.adminRedaction === true);
    this.limiter.check(key, cfg, { user: userId, update: opts.update });
  }

  /** Gives back a message counted for an event that was then not sent. */
  refundMessage(userId: string, adminRedaction = false): void {
    this.limiter.refund(this.messageBucket(userId, adminRedaction).key);
  }

  /** /createRoom and upgrades: rc_room_creation and one rc_message, neither counted unless both allow it. */
  roomCreation(userId: string): void {
    const key = `room_creation:${userId}`;
    this.limiter.check(key, this.cfg.rc_room_creation, { user: userId, update: false });
    this.message(userId);
    this.limiter.check(key, this.cfg.rc_room_creation, { user: userId });
  }

  /** /createRoom's invite list: more than rc_invites.per_room allows at once is refused. */
  createRoomInvites(userId: string, count: number): void {
    if (count === 0) return;
    if (!this.limiter.allow(`invites_room:${userId}`, this.cfg.rc_invites.per_room, { user: userId, cost: count, update: false })) {
      throw new MatrixError(400, 'M_UNKNOWN', 'Cannot invite so many users at once');
    }
  }

  /** A local join by a user not yet joined: rc_joins.local (counted), then rc_joins_per_room (only asked). */
  join(userId: string, roomId: string): void {
    this.limiter.check(`joins_local:${userId}`, this.cfg.rc_joins.local, { user: userId });
    this.limiter.check(`joins_room:${roomId}`, this.cfg.rc_joins_per_room, { user: userId, update: false });
  }

  /** Counts a join event persisted in the room (for rc_joins_per_room), whoever made it. */
  joined(roomId: string): void {
    this.limiter.record(`joins_room:${roomId}`, this.cfg.rc_joins_per_room);
  }

  /** An invite: rc_invites.per_room, .per_user (the invitee) and .per_issuer, each counted. */
  invite(userId: string, roomId: string, invitee: string): void {
    const { per_room, per_user, per_issuer } = this.cfg.rc_invites;
    this.limiter.check(`invites_room:${roomId}`, per_room, { user: userId });
    this.limiter.check(`invites_user:${invitee}`, per_user, { user: userId });
    this.limiter.check(`invites_issuer:${userId}`, per_issuer, { user: userId });
  }

  private messageBucket(userId: string, adminRedaction: boolean): { key: string; cfg: RateLimitConfig } {
    if (adminRedaction && this.cfg.rc_admin_redaction) return { key: `admin_redaction:${userId}`, cfg: this.cfg.rc_admin_redaction };
    const o = this.limiter.override(userId);
    const cfg = o && o.messages_per_second ? { per_second: o.messages_per_second, burst_count: o.burst_count } : this.cfg.rc_message;
    return { key: `message:${userId}`, cfg };
  }
}
