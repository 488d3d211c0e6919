-- laaffic.cli.help: the texts of `laaffic --help` and `laaffic <command> --help` (the README's
-- "Command-line tool" section says the same at more length).

local EXIT_HELP = [=[
exit codes:
  0  done: every part was created (send), the input is valid (validate)
  1  the API refused a part: a status such as -1 (authentication), -20 (data exists:
     the task may exist, check before re-sending) or -41 (the task name already exists;
     with --existing-ok an existing part counts as done), or an answer that is not the
     API's, or the list file changed during the send (the parts sent and not sent
     are listed); also "sandbox status" when it is not running
  2  usage error (unknown option, missing argument, a credential given as an option,
     sign refusing to write to a terminal)
  3  invalid input: the task or the number list cannot be read or does not validate;
     send checks the whole list first, so nothing was sent
  4  configuration or credentials: missing, unreadable, a config file readable by others,
     a bad base_url or cafile; the sandbox files not found
  5  network: the request reached nothing (DNS, refused, TLS); nothing was created, it is
     safe to run the same command again
  6  ambiguous: a request may have reached the server and the task may exist; run the same
     command again: a part that was created answers "already exists" (-41), never twice
When parts end differently the code is the first of 6, 5, 1, 3 that applies.
]=]

local HELP = {}

HELP.main = [=[
usage: laaffic [options] <command> [command options]

Create LAAFFIC AI-Agent group-call tasks: validate, sign and send them.

commands:
  send       build a task (JSON or Lua file, numbers from a CSV) and send it; a list
             longer than one task (200,000 numbers, or --max-rows) is sent in parts
  validate   check a task and its number list, print every problem; sends nothing
  sign       print signed request headers as curl config lines (laaffic sign | curl -K -)
  sandbox    start, stop or check the local sandbox server (from a source checkout)

options of every command:
  --config FILE   the config file (default: $LAAFFIC_CONFIG, else ~/.config/laaffic/config)
  --json          print one JSON document on stdout, for scripts
  -v, --verbose   log each request and answer on stderr
  -q, --quiet     print only errors
  -h, --help      this help; `laaffic <command> --help` for a command
  --version       print the version

credentials (never on the command line: other users can read it with ps):
  environment  LAAFFIC_API_KEY, LAAFFIC_API_SECRET, LAAFFIC_APP_ID, LAAFFIC_BASE_URL,
               LAAFFIC_CAFILE; these win over the config file
  config file  `key = value` lines: api_key, api_secret, app_id, base_url, path,
               cafile, timeout. # starts a comment line only, never a comment after a
               value; "..." or '...' quote a value whole (no escapes). A line that could
               be read two ways (`x = v  # note`) is refused with its line number. A file
               holding api_secret must not be readable by group or others (chmod 600).

]=] .. EXIT_HELP

local CSV_HELP = [=[
number list (CSV, --numbers FILE): a header row naming calleeNumber and any of
text1..text10 (other columns are ignored), RFC 4180 quoting, UTF-8 with or without BOM,
LF or CRLF; an empty cell is left out.
  --column FIELD=HEADER    take FIELD (calleeNumber, text1..text10) from the column named
                           HEADER; FIELD=N takes column number N; FIELD= ignores it
                           (repeatable)
  --delimiter C            one character (default ","; "tab" or "\t" for a tab)
  --no-header              the file has no header row: columns are calleeNumber, text1,
                           ... in order, or as --column FIELD=N numbers them
  --normalize              strip spaces, "+" and "-" from numbers ("+91 97776-54321")
  --dedupe                 drop a number that came earlier in the list
  --require-texts 1,2,3    every row must carry these textN, non-empty
  --no-truncate            a text over 30 characters is an error instead of being cut
  --rejects FILE           skip bad rows instead of failing, and write them to FILE as
                           CSV: line,column,field,message (written whole at the end;
                           FILE may not be the list, the task or the config file)
  --max-rejects N          give up after N bad rows (send: default 1000)
]=]

HELP.send = [=[
usage: laaffic send --task FILE [--numbers FILE.csv] [options]

Builds the task and sends it. The whole list is checked first: if any row is invalid
(and --rejects is not given) nothing is sent, every problem is printed, exit code 3.
A list longer than one task is sent as parts named <taskName>-part-1, -part-2, ...,
several at once; running the same command again creates only the parts that are missing
(the others answer "already exists"). Prints each part's keyId or error.

  --task FILE          the task: a .json file (the API's request JSON) or a .lua file
                       returning the task table (no io/os; laaffic.recall is there);
                       "-" reads JSON from stdin
  --numbers FILE       the number list as CSV: replaces the task's numberInfoList
  --sandbox [DIR]      send to the local sandbox (its URL, CA and credentials from
                       DIR/env; default: the running one)
  --max-rows N         numbers per part (default and at most 200,000)
  --concurrency N      parts sent at once (default 4, at most 64)
  --existing-ok        a part that already exists counts as done (exit 0), e.g. when
                       re-running a send that stopped part-way
  --strict             a warning (a rule laaffic infers but the vendor's pages do not
                       state, e.g. sendTime with a "T") is an error: nothing is sent

]=] .. CSV_HELP .. "\n" .. EXIT_HELP

HELP.validate = [=[
usage: laaffic validate --task FILE [--numbers FILE.csv] [options]

Checks the task and every row of its list without sending anything (no network, no
credentials needed), prints every problem - file:line:column for the CSV, the field
path (numberInfoList[3].calleeNumber) for the task file - and a summary: rows, the parts
a send would make, rejected rows, duplicates, and the warnings (rules laaffic infers
but the vendor's pages do not state: the task is valid, but likely not what you meant).
Exit code 0 when valid, 3 when not.

  --task FILE, --numbers FILE, --max-rows N, --sandbox [DIR], --strict   as for send
  --max-rejects N      stop after N bad rows (default 10,000,000)

]=] .. CSV_HELP

HELP.sign = [=[
usage: laaffic sign [--timestamp N] [--show] [--sandbox [DIR]]

Prints the signed request headers (Content-Type, Api-Key, Timestamp, Sign) as curl
config lines, so that

  laaffic sign | curl -K - --data-binary @task.json https://api.laaffic.com/v3/voice/group/call/send/agent

sends a request by hand. The Sign is a credential: it is written to stdout only, and
not to a terminal unless --show is given. --json prints the headers as one JSON object.

  --timestamp N        sign for unix time N (default: now; the API accepts a few minutes)
  --show               write to a terminal too
]=]

HELP.sandbox = [=[
usage: laaffic sandbox start|stop|status [--dir DIR] [--ttl SECONDS]

Runs sandbox/laaffic-sandbox, the local stand-in for the API (nginx with the lua module
on 127.0.0.1, HTTP and HTTPS with a CA of its own): a source checkout's, or the copy an
installed rock keeps (LAAFFIC_SANDBOX_BIN names another). From a rock, the first start
builds laaffic.core for nginx's LuaJIT into ${XDG_CACHE_HOME:-~/.cache}/laaffic/ (Debian:
gcc libluajit2-5.1-dev libssl-dev libcurl4-openssl-dev); nginx needs
nginx libnginx-mod-http-lua lua-cjson. Then `laaffic send --sandbox [DIR] ...` sends to it.

  start    start one (in DIR, default a new temporary directory) and print its URLs
  stop     stop it and remove its temporary files
  status   exit 0 when it runs, 1 when not
  --ttl S  (start) the sandbox stops itself after S seconds, and its files go as
           with stop
]=]

return HELP
