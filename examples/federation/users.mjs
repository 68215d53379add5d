// The demo directory: users and their password hashes (scrypt), kept in a JSON file.
// `node users.mjs hash PASSWORD` prints a new entry's salt and hash.

import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';

const scryptAsync = promisify(scrypt);
const KEY_LENGTH = 32;

/** The password's scrypt hash with `salt` (both base64url). */
export async function hashPassword(password, salt) {
  const key = await scryptAsync(password.normalize('NFKC'), Buffer.from(salt, 'base64url'), KEY_LENGTH);
  return key.toString('base64url');
}

/** Loads the users file: `{ "<id>": { "salt", "hash", "name"?, "email"? } }`. */
export async function loadUsers(path) {
  const users = JSON.parse(await readFile(path, 'utf8'));
  for (const [id, user] of Object.entries(users)) {
    if (typeof user.salt !== 'string' || typeof user.hash !== 'string') {
      throw new Error(`user ${id} in ${path} needs a salt and a hash`);
    }
  }
  return users;
}

// Checked against when the username is unknown, so that an unknown name costs the same
// scrypt as a wrong password and the answer's timing does not tell which it was.
const DUMMY = { salt: randomBytes(16).toString('base64url'), hash: randomBytes(KEY_LENGTH).toString('base64url') };

/** The user's id when `password` is theirs, else null. */
export async function checkPassword(users, username, password) {
  const known = Object.hasOwn(users, username) ? users[username] : null;
  const entry = known ?? DUMMY;
  const given = Buffer.from(await hashPassword(String(password), entry.salt), 'base64url');
  const stored = Buffer.from(entry.hash, 'base64url');
  const matches = given.length === stored.length && timingSafeEqual(given, stored);
  return known && matches ? username : null;
}

if (process.argv[2] === 'hash' && process.argv[3]) {
  const salt = randomBytes(16).toString('base64url');
  console.log(JSON.stringify({ salt, hash: await hashPassword(process.argv[3], salt) }));
}
