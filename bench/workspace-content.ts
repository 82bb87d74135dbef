// The notes of the benchmark workspace (bench/workspace.bench.ts), made up
// but shaped like a person's notes: titles of a few words, Markdown bodies of
// mostly a few hundred words (1 in 100 a long one of about 20 KB), a few tags
// each. Words follow a Zipf distribution over a vocabulary of common English
// words and made-up ones, so some words are in nearly every note and most are
// rare. A few words and tags are planted at known rates, for the filters and
// searches the benchmark measures.
//
// Note k (1, 2, ...) is a pure function of k: the load generator re-creates a
// note's body to edit it without changing which searches find it.

/** Words and tags planted at known rates (the benchmark counts the actual matches too). */
export const PLANTED = {
  /** In about half of the bodies and 8% of the titles. */
  commonWord: 'project',
  /** In the titles of notes k ≡ 7 (mod 2000) and the bodies of the other notes k ≡ 7 (mod 1000): 10 per 10,000. */
  rareWord: 'zeppelin',
  /** The most frequent word of the vocabulary: in nearly every note. */
  everywhereWord: 'the',
  /** About 30% of the notes. */
  commonTag: 'work',
  /** Notes k ≡ 3 (mod 400): 25 per 10,000. */
  rareTag: 'tax',
} as const;

/** Small, fast, seedable (mulberry32): the same k gives the same note on every run and in every process. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const ENGLISH = (
  'the and of to a in for is on that with we this it as be at by from or next week team plan call idea ' +
  'draft review notes list today later client budget design check fix ship read write meeting question ' +
  'answer follow up send ask share update'
).split(' ');

const SYLLABLES =
  'ba be bi bo bu da de di do ka ke ki ko ku la le li lo lu ma me mi mo mu na ne ni no nu ra re ri ro ru sa se si so su ta te ti to tu va ve vi vo za ze zi zo'.split(
    ' ',
  );

/** The vocabulary in rank order: English words first, then 2,000 made-up words (two to four syllables). */
const VOCABULARY: readonly string[] = (() => {
  const rng = random(20261122);
  const words = new Set(ENGLISH);
  while (words.size < ENGLISH.length + 2000) {
    const syllables = 2 + Math.floor(rng() * 3);
    let word = '';
    for (let i = 0; i < syllables; i++) word += SYLLABLES[Math.floor(rng() * SYLLABLES.length)];
    words.add(word);
  }
  return [...words];
})();

/** Cumulative Zipf weights (exponent 1) over VOCABULARY, for sampling by binary search. */
const CUMULATIVE: Float64Array = (() => {
  const c = new Float64Array(VOCABULARY.length);
  let sum = 0;
  for (let i = 0; i < c.length; i++) {
    sum += 1 / (i + 1);
    c[i] = sum;
  }
  for (let i = 0; i < c.length; i++) c[i] = (c[i] as number) / sum;
  return c;
})();

function word(rng: () => number): string {
  const u = rng();
  let lo = 0;
  let hi = CUMULATIVE.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if ((CUMULATIVE[mid] as number) < u) lo = mid + 1;
    else hi = mid;
  }
  return VOCABULARY[lo] as string;
}

/** Tags besides the planted ones, most used first. */
const TAG_PALETTE = [
  'ideas',
  'home',
  'reading',
  'meeting',
  'todo',
  'journal',
  'research',
  'design',
  'code',
  'travel',
  'health',
  'finance',
  'recipes',
  'family',
  'books',
  'music',
  'garden',
  'learning',
  'writing',
  'events',
  'shopping',
  'fitness',
  'movies',
  'photos',
  'admin',
  'car',
];

export interface NoteContent {
  title: string;
  body: string;
  tags: string[];
  /** How long ago it was created, in days (0 to 365). */
  ageDays: number;
  /** How long after its creation it was last edited, in days (0 to 30; capped at now by the caller). */
  editedAfterDays: number;
}

export function noteContent(k: number): NoteContent {
  const rng = random(Math.imul(k, 2654435761) ^ 0x5eed);
  const words = (n: number) => Array.from({ length: n }, () => word(rng));

  const titleWords = words(2 + Math.floor(rng() * 6));
  if (rng() < 0.08) titleWords.splice(Math.floor(rng() * titleWords.length), 0, PLANTED.commonWord);
  if (k % 2000 === 7) titleWords.push(PLANTED.rareWord);
  const title = titleWords.join(' ');

  const length = k % 100 === 42 ? 3000 : 30 + Math.floor(rng() ** 2 * 400);
  const bodyWords = words(length);
  if (rng() < 0.5) bodyWords.splice(Math.floor(rng() * bodyWords.length), 0, PLANTED.commonWord);
  if (k % 1000 === 7 && k % 2000 !== 7) bodyWords.splice(Math.floor(rng() * length), 0, PLANTED.rareWord);
  // Paragraphs of 20 to 60 words; some notes open with a heading, some paragraphs are lists.
  const blocks: string[] = [];
  if (rng() < 0.3) blocks.push(`## ${words(3).join(' ')}`);
  for (let i = 0; i < bodyWords.length; ) {
    const n = 20 + Math.floor(rng() * 40);
    const chunk = bodyWords.slice(i, i + n);
    i += n;
    if (rng() < 0.15) {
      const items: string[] = [];
      for (let j = 0; j < chunk.length; j += 5) items.push(`- ${chunk.slice(j, j + 5).join(' ')}`);
      blocks.push(items.join('\n'));
    } else {
      const text = chunk.join(' ');
      blocks.push(`${text.charAt(0).toUpperCase()}${text.slice(1)}.`);
    }
  }
  const body = blocks.join('\n\n');

  const tags = new Set<string>();
  if (rng() < 0.3) tags.add(PLANTED.commonTag);
  if (k % 400 === 3) tags.add(PLANTED.rareTag);
  const extra = Math.floor(rng() ** 2 * 4);
  for (let i = 0; i < extra; i++)
    tags.add(TAG_PALETTE[Math.floor(rng() ** 2 * TAG_PALETTE.length)] as string);

  return { title, body, tags: [...tags], ageDays: rng() * 365, editedAfterDays: rng() ** 3 * 30 };
}
