// Reading a secret: typed at a terminal without echo, or read as the first line
// of standard input when it is not a terminal (for scripts:
// `printf '%s\n' "$PASSWORD" | enclave users create-admin ...`). Never an argument.
import { createInterface } from 'node:readline';

export function readSecret(question: string): Promise<string> {
  const input = process.stdin;
  if (!input.isTTY) return firstLine(input);
  return new Promise((resolve) => {
    const rl = createInterface({ input, output: process.stderr, terminal: true });
    // Echo nothing while the secret is typed.
    (rl as unknown as { _writeToOutput: (s: string) => void })._writeToOutput = (s: string) => {
      if (s.startsWith(question)) process.stderr.write(question);
    };
    rl.question(question, (answer) => {
      rl.close();
      process.stderr.write('\n');
      resolve(answer);
    });
  });
}

async function firstLine(input: NodeJS.ReadStream): Promise<string> {
  let text = '';
  for await (const chunk of input) {
    text += String(chunk);
    if (text.includes('\n')) break;
  }
  return text.split(/\r?\n/)[0] ?? '';
}
