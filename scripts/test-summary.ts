// Prints vitest's JSON report as one plain closing line, `N passed, N failed, N skipped`, and exits
// non-zero when any test failed, was skipped or when no test ran at all: a skipped test is never
// counted as passing.
import { readFileSync } from 'node:fs';

interface Report {
  numPassedTests: number;
  numFailedTests: number;
  numPendingTests: number;
  numTodoTests: number;
  numTotalTests: number;
  numFailedTestSuites: number;
  testResults?: Array<{ name: string; status: string; message?: string }>;
}

const file = process.argv[2] ?? '.artifacts/vitest.json';
let report: Report;
try {
  report = JSON.parse(readFileSync(file, 'utf8')) as Report;
} catch (error) {
  console.log(`no test report at ${file}: ${(error as Error).message}`);
  process.exit(1);
}
const skipped = report.numPendingTests + report.numTodoTests;
// A file whose setup failed reports its tests as skipped, not failed: name the file so the cause is seen.
const failedFiles = (report.testResults ?? []).filter((file) => file.status === 'failed');
for (const file of failedFiles)
  console.log(`failed file: ${file.name}${file.message ? ` (${file.message})` : ''}`);
console.log(
  `\n${report.numPassedTests} passed, ${report.numFailedTests} failed, ${skipped} skipped, ${report.numFailedTestSuites} failed suite(s)`,
);
const bad = report.numFailedTests > 0 || report.numFailedTestSuites > 0 || skipped > 0;
process.exit(bad || report.numTotalTests === 0 ? 1 : 0);
