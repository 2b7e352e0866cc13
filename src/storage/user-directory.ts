/**
 * The user directory's search: local profiles matched through the text-search
 * index of migration 0009 (`profiles.search_vector`), filtered to the users
 * the searcher may see, ranked as Synapse ranks them. The visible sets
 * (members of the searcher's rooms, of public rooms) are each computed once
 * and hashed, so a short term matching thousands of users stays cheap.
 */
import { sql } from 'kysely';
import type { Db } from './db.js';

export interface DirectoryRow {
  user_id: string;
  display_name: string | null;
  avatar_url: string | null;
}

export interface DirectorySearch {
  searcher: string;
  /** tsquery text matching every word as a prefix: `'ali':* & 'smi':*` */
  prefixQuery: string;
  /** tsquery text matching every word exactly, for ranking. */
  exactQuery: string;
  /** Rows to return at most (the caller asks for one more than it shows, to tell `limited`). */
  limit: number;
  /** Every local user, not only those sharing a room with the searcher or in a public room. */
  searchAllUsers: boolean;
  showLockedUsers: boolean;
}

/** At most this many matches are ranked, as in Synapse: a one-letter search on a big server stays bounded. */
const MAX_CANDIDATES = 10_000;

export async function searchUserDirectory(db: Db, q: DirectorySearch): Promise<DirectoryRow[]> {
  // Visible: sharing a joined room with the searcher, or joined to a room
  // that is public (join rule) or world-readable (history visibility).
  const visibility = q.searchAllUsers
    ? sql`m.user_id <> ${q.searcher}`
    : sql`(
        m.user_id IN (
          SELECT theirs.state_key FROM current_state mine
          JOIN current_state theirs
            ON theirs.room_id = mine.room_id AND theirs.type = 'm.room.member' AND theirs.membership = 'join'
          WHERE mine.type = 'm.room.member' AND mine.state_key = ${q.searcher} AND mine.membership = 'join'
            AND theirs.state_key <> ${q.searcher}
        )
        OR m.user_id IN (
          SELECT theirs.state_key FROM current_state theirs
          WHERE theirs.type = 'm.room.member' AND theirs.membership = 'join'
            AND theirs.room_id IN (SELECT room_id FROM public_rooms)
        )
      )`;
  const locked = q.showLockedUsers ? sql`` : sql`AND NOT u.locked`;
  // Weights are {D, C, B, A}: domain, unused, display name, localpart.
  const res = await sql<DirectoryRow>`
    WITH matching AS (
      SELECT p.user_id, p.displayname, p.avatar_url, p.search_vector AS vector
      FROM profiles p
      WHERE p.search_vector @@ to_tsquery('simple', ${q.prefixQuery})
      LIMIT ${MAX_CANDIDATES}
    ),
    public_rooms AS MATERIALIZED (
      SELECT cs.room_id FROM current_state cs JOIN events e ON e.event_id = cs.event_id
      WHERE cs.state_key = '' AND cs.type IN ('m.room.join_rules', 'm.room.history_visibility')
        AND ((cs.type = 'm.room.join_rules' AND e.json->'content'->>'join_rule' = 'public')
          OR (cs.type = 'm.room.history_visibility' AND e.json->'content'->>'history_visibility' = 'world_readable'))
    )
    SELECT m.user_id, m.displayname AS display_name, m.avatar_url
    FROM matching m JOIN users u ON u.user_id = m.user_id
    WHERE NOT u.deactivated AND u.appservice_id IS NULL AND (u.user_type IS NULL OR u.user_type <> 'support')
      ${locked}
      AND ${visibility}
    ORDER BY
      (CASE WHEN m.displayname IS NOT NULL THEN 1.2 ELSE 1.0 END)
      * (CASE WHEN m.avatar_url IS NOT NULL THEN 1.2 ELSE 1.0 END)
      * (3 * ts_rank_cd('{0.1, 0.1, 0.9, 1.0}', m.vector, to_tsquery('simple', ${q.exactQuery}), 8)
         + ts_rank_cd('{0.1, 0.1, 0.9, 1.0}', m.vector, to_tsquery('simple', ${q.prefixQuery}), 8)) DESC,
      m.displayname IS NULL, m.avatar_url IS NULL, m.user_id
    LIMIT ${q.limit}`.execute(db);
  return res.rows;
}

/** Word-ish: Python's `\w` (letters, digits, marks, underscore). */
const WORDISH = /^[\p{L}\p{N}\p{M}_]/u;
const segmenter = new Intl.Segmenter(undefined, { granularity: 'word' });

/**
 * The words of a search term, as Synapse splits them: lower-cased and
 * NFKC-normalised, cut into words by Unicode word boundaries and at `@` and
 * `:` (as in user ids), with `-`, `.` and `_` kept inside words
 * (`user-71` stays one word, which is how the index tokenises it).
 */
export function searchWords(term: string): string[] {
  const text = term.toLowerCase().normalize('NFKC');
  const parts: string[] = [];
  for (const s of segmenter.segment(text)) for (const p of s.segment.split(/[@:]+/)) parts.push(p.trim());
  const out: string[] = [];
  for (let i = 0; i < parts.length; i++) {
    const cur = parts[i] as string;
    if (cur === '') continue;
    if (cur === '-' || cur === '.' || cur === '_') {
      const next = parts[i + 1];
      if (next === undefined || !WORDISH.test(next)) continue; // no trailing punctuation
      i++;
      const prev = parts[i - 2];
      const prefix = prev !== undefined && WORDISH.test(prev) && out.length > 0 ? (out.pop() as string) : '';
      out.push(`${prefix}${cur}${next}`);
      continue;
    }
    if (!WORDISH.test(cur)) continue;
    out.push(cur);
  }
  return out;
}

/** Most words of a term that are searched for: long pastes stay cheap. */
const MAX_WORDS = 10;

/** The tsquery texts for a term (prefix and exact), or undefined when it holds no word. */
export function directoryQueries(term: string): { prefixQuery: string; exactQuery: string } | undefined {
  const words = searchWords(term).slice(0, MAX_WORDS);
  if (words.length === 0) return undefined;
  // Quoted lexemes: quotes doubled, backslashes escaped.
  const quoted = words.map((w) => `'${w.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`);
  return { prefixQuery: quoted.map((w) => `${w}:*`).join(' & '), exactQuery: quoted.join(' & ') };
}
