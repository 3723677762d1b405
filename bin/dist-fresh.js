// Whether dist/ (the compiled sources, npm run build) is newer than every file under src/: only then does the
// postern command run it. A checkout or an edit after the build makes it stale, and the sources run through tsx.
import fs from 'node:fs';
import path from 'node:path';

export const STAMP = path.join('dist', '.built');

/** The newest modification time under dir, or 0 when it has nothing. */
function newest(dir) {
  let max = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    max = Math.max(max, e.isDirectory() ? newest(p) : fs.statSync(p).mtimeMs);
  }
  return max;
}

export function distFresh(root) {
  let built;
  try {
    built = fs.statSync(path.join(root, STAMP)).mtimeMs;
  } catch {
    return false;
  }
  return newest(path.join(root, 'src')) < built;
}
