/** Process entry of the CLI (and of the bundled engine server the extension spawns). */
import { main } from './main';

void main(process.argv.slice(2)).then((code) => {
  // a negative code means "keep running" (the server)
  if (code >= 0) process.exit(code);
});
