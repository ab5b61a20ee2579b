/** `sparkq guide`: how a person or a chat agent works a queue by hand. Plain text, fits one screen or two. */
export const WORKER_GUIDE = `SparkQ — working a queue by hand

1. Pick up the next task
     sparkq claim --queue "<queue>" [--worker <your name>]
   It prints the task (id, tool, prompt, payload), the queue's standing instructions, and a lease.
   Keep the lease: finishing needs it (or export SPARKQ_LEASE=<lease>). Nothing to claim = the queue is empty.
   Look first without taking it: sparkq peek --queue "<queue>".

2. Do the work the tool names
   run-bash / run-python   run the named script from the script dirs (sparkq scripts lists them) with the given
                           arguments; keep its output.
   llm-codex / llm-claude  an agent task: follow the prompt and the queue instructions in the queue's working dir.
   llm-sonnet / llm-haiku  manual: you are the model — read the prompt, do what it asks.
   Follow the queue's instructions for every task. Stay inside the working directory.

3. Finish it — with a summary someone can act on
     sparkq complete <task> "<what was done, where, counts>" [--data "<details>"]
   A good summary: "Added 3 endpoints to api/users.ts; 12 tests pass" — not "done".
   --data takes details as plain text ("Line 150: add rate limiting, Line 320: caching") or as a JSON
   object/array, which is stored as JSON. Scripts that want bad JSON refused use --data-json '<json>'
   (or --data-file F). --summary "<text>" works as well as the second word.

4. Or fail it — early, with what you have
     sparkq fail <task> "<what went wrong and what would fix it>" [--data "<partial results>"]
   A task is stale at 1× its timeout and failed automatically at 2× (whichever sparkq command runs next
   does it, even when nothing else is running): fail it yourself before then, with partial results in
   --data, rather than let it time out. \`sparkq task <task>\` says when it goes stale.
   A failed task can be retried: sparkq requeue <task>.

5. Check your work
     sparkq task <task>        everything about one task: result, timings, attempts
     sparkq tasks --queue "<queue>" --status failed

6. Checking another task's result (a validation task; its prompt says what to check)
     sparkq verdict <task> pass|fail "<what is wrong and what to fix>"
   fail sends the checked task back for another round with your feedback, so say exactly what to fix.
   On a queue that runs each task in a git worktree of its own (queue create --isolation worktree), work its
   tasks through a worker, sparkq run --queue "<queue>": it shows each task with its folder and waits for you.

7. Put work on a queue (an orchestrator)
     sparkq enqueue <tool> --queue "<queue>" --prompt "<what to do>" [--after <task>] [--idempotency-key <name>]
   With a key, repeating the command (after a timeout or an error) prints the task the first one made
   instead of adding a second. A plan of many tasks: sparkq plan apply PLAN.yml [--dry-run].

Workers (sparkq run --queue "<queue>" [--watch]) do all of this by themselves for script and agent tools;
for manual tools they print the prompt and the exact complete/fail commands, and wait for you.
Agent hosts can use all of this as MCP tools: sparkq mcp --print-config claude|codex|vscode.
`;
