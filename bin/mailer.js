#!/usr/bin/env node
// The built CLI lives in dist/src/: the npm package carries it built (prepack), and `npm install` in a checkout builds it.
import('../dist/src/cli.js').then((cli) => cli.main(process.argv)).catch((err) => {
  if (err && err.code === 'ERR_MODULE_NOT_FOUND' && String(err.message).includes('dist')) {
    process.stderr.write('mailer is not built yet: run `npm install` (or `npm run build`) in the mailer folder.\n');
    process.exit(2);
  }
  throw err;
});
