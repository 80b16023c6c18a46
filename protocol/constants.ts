/** Wire-protocol identifiers and limits. Bump the version in an id when its format changes. */

/** The job-exchange stream protocol: length-prefixed dag-cbor messages, pipelined. */
export const JOB_PROTOCOL = '/wasmesh/job/1.0.0'

/** The gossipsub topic that carries capacity adverts. */
export const CAPACITY_TOPIC = '/wasmesh/capacity/1'

/** Domain separator prepended to a receipt payload before signing, so a receipt signature can never be replayed as any other libp2p signature. */
export const RECEIPT_SIGNING_DOMAIN = 'wasmesh-receipt:v1:'

/** Prefixed to the Merkle root a worker signs for a batch of receipts: a batch signature can never pass for a single receipt's. */
export const RECEIPT_BATCH_SIGNING_DOMAIN = 'wasmesh-receipt-batch:v1:'

/** Receipts a worker signs with one signature at most. */
export const MAX_RECEIPT_BATCH = 1024

/**
 * How long a busy worker holds a finished job's receipt for others to share
 * its signature. Only while other jobs are running or queued: an idle
 * worker signs at once.
 */
export const RECEIPT_BATCH_WAIT_MS = 1

/** How long a receipt may be held while jobs wait in the worker's queue (their requesters' credit keeps the pipe full meanwhile). */
export const RECEIPT_BATCH_QUEUED_WAIT_MS = 4

/** Inputs and outputs up to this size travel inside the job spec or receipt; larger ones go by CID. */
export const MAX_INLINE_BYTES = 1024 * 1024

/** Largest job-protocol message accepted: an inline payload plus generous room for the envelope. */
export const MAX_MESSAGE_BYTES = MAX_INLINE_BYTES + 64 * 1024

/** Largest capacity advert accepted. */
export const MAX_ADVERT_BYTES = 8 * 1024

/** Largest module a worker will fetch. */
export const MAX_MODULE_BYTES = 64 * 1024 * 1024

/** While a worker has jobs in flight on a stream, it says so this often, so the requester can tell a slow job from a vanished worker. */
export const HEARTBEAT_INTERVAL_MS = 2_000

/** Silence on a stream with jobs in flight after which the requester gives the worker up: three missed heartbeats. */
export const HEARTBEAT_TIMEOUT_MS = 3 * HEARTBEAT_INTERVAL_MS

/** Job streams one connection may open to us: one is enough to pipeline, a few allow for reconnect overlap. */
export const MAX_JOB_STREAMS_PER_CONNECTION = 4

/** Requests one job stream may have in flight before the worker stops reading from it. */
export const MAX_PIPELINED_REQUESTS = 256

/**
 * Jobs one `submitMany` message carries at most: a whole credit window. A
 * requester also keeps each message within MAX_MESSAGE_BYTES, so big specs
 * go in smaller batches (or alone, in `submit`).
 */
export const MAX_SUBMIT_BATCH = MAX_PIPELINED_REQUESTS

/**
 * Jobs one `submitChunk` carries at most. A chunk runs as one unit in one
 * slot, so it holds only jobs measured to take well under a millisecond or
 * two (MAP_CHUNK_EXEC_MS): 64 of them stay far inside QUEUE_TARGET_MS.
 */
export const MAX_CHUNK_ITEMS = 64

/**
 * Jobs a requester puts in one chunk at most, and the share of its jobs in
 * flight one chunk takes (an eighth), so chunks queue behind each other at
 * every slot while answers travel. Measured on 2 cores (docs/benchmarks.md):
 * chunks of 32 ran no faster than 16, and 64 runs in flight went faster in
 * chunks of 8 than of 4.
 */
export const CHUNK_JOBS = 16
export const CHUNK_SHARE_OF_IN_FLIGHT = 8

/** Answers a job stream may have waiting to be written before the worker stops reading from it (backpressure). */
export const MAX_QUEUED_ANSWERS = 64

/** The largest credit window a worker grants one requester: jobs outstanding on one stream, running and queued. */
export const MAX_CREDIT_WINDOW = MAX_PIPELINED_REQUESTS

/**
 * Work a worker queues per slot beyond what it runs, in its measured job
 * time: tiny jobs queue deep (the pipe never drains between them), long
 * ones one job per slot (so a slot does not idle a round trip between
 * jobs; a job queued behind a slow one at a map's tail gets a backup copy,
 * BACKUP_FACTOR). Kept far below SILENCE_HEDGE_MS.
 */
export const QUEUE_TARGET_MS = 50

/** Jobs a worker queues beyond its slots, across requesters: a bound on memory whatever the windows add up to. */
export const MAX_QUEUED_JOBS = 512

/** Bytes of queued job specs (inline inputs included) a worker holds at most; beyond it, submissions are answered busy. */
export const MAX_QUEUED_JOB_BYTES = 32 * 1024 * 1024

/** Malformed frames a job stream may send before it is reset: a confused client gets answers, a flood gets cut off. */
export const MAX_MALFORMED_FRAMES = 16

/** Streams a peer may have reset for garbage within MISBEHAVIOUR_WINDOW_MS before its new ones are refused at once. */
export const MAX_MISBEHAVIOUR = 3

export const MISBEHAVIOUR_WINDOW_MS = 60_000

/** Misbehaving peers a worker remembers: bounded against Sybil floods. */
export const MAX_REMEMBERED_MISBEHAVERS = 1024

/**
 * A job that ended holding more memory than this, or wrote more output, is a
 * big one: its thread is replaced by a fresh one, and a Node worker collects
 * garbage after it, to give the memory back.
 */
export const BIG_JOB_BYTES = 64 * 1024 * 1024

/** How long a worker keeps a large output it added to its blockstore for the requester to fetch; then it is deleted. */
export const OUTPUT_TTL_MS = 30_000

/**
 * A Node worker's job thread ends after this long without a job, giving back
 * its ~13 MiB; the next job starts a new one (tens of ms, docs/benchmarks.md).
 * Long enough that a steady stream of jobs never pays that start.
 */
export const JOB_THREAD_IDLE_MS = 60_000

export const DEFAULT_LIMITS = {
  timeoutMs: 30_000,
  memoryBytes: 256 * 1024 * 1024,
  outputBytes: 16 * 1024 * 1024
} as const

/** Bounds every job spec's limits must fall within. */
export const LIMIT_BOUNDS = {
  timeoutMs: { min: 1, max: 24 * 60 * 60 * 1000 },
  memoryBytes: { min: 64 * 1024, max: 4 * 1024 * 1024 * 1024 },
  outputBytes: { min: 0, max: 1024 * 1024 * 1024 }
} as const

export const MAX_REDUNDANCY = 16
export const MAX_ARGS = 256
export const MAX_ENV = 256
export const MAX_STRING_LENGTH = 4096

/** How often a contributing peer re-publishes its advert when nothing changed, in a small mesh (see CapacityService: it stretches with the mesh). */
export const ADVERT_INTERVAL_MS = 5_000

/** Adverts are published at most this often, however fast slots change. */
export const ADVERT_MIN_INTERVAL_MS = 500

/** A peer that misses this many of its adverts (by the interval it announced) is presumed gone. */
export const ADVERT_MISSES_TO_FORGET = 3

/** Bounds of the re-publish interval an advert may announce. */
export const ADVERT_INTERVAL_BOUNDS = { min: 100, max: 10 * 60 * 1000 } as const

/** Peers a capacity table holds; in a full table a stranger waits until a stale stranger's place frees. */
export const MAX_CAPACITY_PEERS = 1024

/** Publishers whose advert rate is tracked (the oldest are forgotten first). */
export const MAX_RATE_TRACKED = 16_384

/** Adverts of one publisher forwarded per window; more are dropped. An honest peer publishes at most every ADVERT_MIN_INTERVAL_MS, plus a burst on joining. */
export const MAX_ADVERTS_PER_WINDOW = 4

export const ADVERT_RATE_WINDOW_MS = 1_000

/** Only peers heard of for at least this long stretch our advert interval: a burst of fresh identities cannot. */
export const STRETCH_MIN_AGE_MS = 60_000

/**
 * The advert interval stretches at most this much (5⅓ minutes at the 5 s
 * base): peers must hear of us within minutes. N / (2 log2 N) reaches it at
 * about 1,450 peers, so per-peer gossip grows with log N up to there. It was
 * 12, which the simulated mesh (docs/scale.md) showed capping the stretch at
 * about 150 peers: beyond, per-peer gossip grew linearly with N.
 */
export const MAX_ADVERT_STRETCH = 64

/** Cached module CIDs listed in one advert. */
export const MAX_ADVERTISED_MODULES = 32

/** Addresses listed in one advert. */
export const MAX_ADVERTISED_ADDRS = 16

/** Time a requester allows a worker beyond the job's own time limit, for fetching the module and returning the receipt. */
export const DEADLINE_GRACE_MS = 15_000

/** How long a worker tries to fetch a job's module and input before it reports ContentFetchError: well inside the requester's grace, so the requester hears why. */
export const FETCH_TIMEOUT_MS = 10_000

/**
 * Executions a job may use beyond twice its redundancy (for lost, late,
 * refused, overdue or disagreeing ones) before it is reported as failed.
 * Generous on purpose: a few hostile peers must not exhaust it, and the
 * job's wait deadline bounds it in time anyway.
 */
export const EXTRA_EXECUTIONS = 16

/** Jobs of ours a worker with no record may hold at once, whatever it advertises: a claim is not a record. */
export const UNKNOWN_WORKER_SLOTS = 2

/** Share of placements that go to the best worker with no record yet, so newcomers can earn one (and each holds at most UNKNOWN_WORKER_SLOTS). */
export const EXPLORATION_RATE = 0.1

/** A worker may hold one more of our jobs at once for every this many it delivered. */
export const TRUSTED_SLOT_EVERY = 8

/** The most of our jobs any one worker may hold at once. */
export const MAX_SLOTS_PER_WORKER = 256

/**
 * A worker that has not said a word (not even `accepted`) this long after a
 * job was sent is presumed silent, and the job is also sent elsewhere. A
 * live worker answers within milliseconds: `accepted` goes out 5 ms after it
 * takes a job.
 */
export const SILENCE_HEDGE_MS = 1_000

/**
 * Without an estimate of how long this module runs, a job still without a
 * result after this long (or a quarter of its time limit, if less) is also
 * sent elsewhere: a worker that heartbeats for ever cannot hold it to its
 * whole time limit.
 */
export const FIRST_RUN_HEDGE_MS = 5_000

/** With an estimate, a job is also sent elsewhere after this many times it. */
export const HEDGE_FACTOR = 4

/**
 * At the tail of a wide map or batch (jobs of ours waited for workers until
 * lately, none waits now, and a worker is idle), an execution running this
 * share of the module's usual round trip, and at least BACKUP_MIN_MS, gets a
 * backup copy on the idle worker, and so does each copy in turn: the first
 * verified result wins and the others are cancelled, held against nobody
 * (MapReduce's backup tasks). The room would idle anyway, and one slow
 * execution at the tail holds up the whole map. Copying sooner shortened
 * the simulated tail down to about this share (docs/scale.md, session 9);
 * a share rather than a fixed delay keeps the copies of hour-long jobs
 * minutes apart. A lone run is not copied: it has its hedge (HEDGE_FACTOR).
 */
export const BACKUP_FACTOR = 0.15
/** A worker's first job of a module (its fetch and compile, tens to hundreds of ms) is slower, not slow: sub-second jobs are not copied before this. */
export const BACKUP_MIN_MS = 500

/** A worker that answers busy is left alone this long, doubling each time in a row: it said it is full. */
export const BUSY_BACKOFF_MS = 20

/**
 * Busy answers a job takes from one worker before it stops asking that
 * worker (it may be full for long, or lying about its room): with the
 * backoff, about half a minute of asking.
 */
export const MAX_BUSY_PER_JOB = 20

/** The longest busy backoff: a worker that was full may have room again soon. */
export const BUSY_BACKOFF_MAX_MS = 2_000

/** After the first advert arrives, how long a new requester waits for more before it settles for a worker without the module cached. */
export const ADVERT_SETTLE_MS = 300

/** How long a single result waits for a free worker to check it before it stands unchecked (resting on one word; healing may revisit it). */
export const CHECK_WAIT_MS = 2_000

/** How long `run` waits for a worker to advertise capacity before giving up. */
export const WORKER_WAIT_MS = 10_000

/** How long joining waits for a bootstrap node to answer: a dial on a working network takes well under a second. */
export const BOOTSTRAP_DIAL_TIMEOUT_MS = 10_000
/** Dials of one bootstrap node at start-up when it answers but drops the handshake (busy), BOOTSTRAP_RETRY_MS × attempt apart. */
export const BOOTSTRAP_DIAL_ATTEMPTS = 3
export const BOOTSTRAP_RETRY_MS = 500

/** How long a joining peer keeps trying to tell the topic it is there; later adverts carry the news anyway. */
export const ANNOUNCE_TIMEOUT_MS = 10_000

/**
 * `map` sends jobs of a module in chunks (`submitChunk`) once its receipts
 * say it runs in less than this (execution alone, smoothed): below it a
 * job's own messages, state and signature cost more than the job.
 */
export const MAP_CHUNK_EXEC_MS = 2

/**
 * The longest a requester waits for a chunk's answer before it runs the
 * chunk's jobs one by one instead (once chunks came back, it waits a few
 * times their usual round trip: see chunker.ts). A chunk holds only jobs
 * measured tiny, so it takes milliseconds; one that takes this long met a
 * slow input (it then gets its own time limit) or a stuck worker.
 */
export const MAP_CHUNK_DEADLINE_MS = 10_000

/** How long a partial chunk of a map waits for more jobs while other chunks keep the workers busy. */
export const MAP_CHUNK_HOLD_MS = 2

/** Jobs `map` and batches keep in flight at once: enough to fill a few workers' slots and pipelines. */
export const MAP_CONCURRENCY = 64

/** The largest per-job memory limit a worker accepts unless told otherwise: a phone or a laptop can give 1 GiB to one job. */
export const MAX_JOB_MEMORY_BYTES = 1024 * 1024 * 1024

/**
 * A job still running this long after it was taken is announced with
 * `accepted`. Most jobs finish sooner, and each message is a socket write:
 * on a busy worker, writes cost more than the jobs.
 */
export const ACCEPTED_NOTICE_MS = 5

/**
 * A worker's results are all checked (run again on another worker) until
 * this many were confirmed, as BOINC's adaptive replication does: a liar
 * that lies on a share p of its jobs passes every one of these checks with
 * probability (1-p)^10 (2.8% for p = 0.3), and healing undoes what it slipped
 * through later. The cost is ten extra runs per new worker.
 */
export const TRUST_AFTER_CONFIRMATIONS = 10

/** Once trusted, the share of a worker's results still checked; it falls as its record grows. */
export const BASE_SPOT_CHECK_RATE = 0.1

/** Strikes (outvoted 2 to 1 with no audit to settle it) before a worker is banned. */
export const STRIKES_TO_BAN = 2

/** Distinct workers that must have outvoted a worker before its strikes ban it: more than two colluders can muster. */
export const DISTINCT_ACCUSERS_TO_BAN = 3

/** Accusers remembered per worker. */
export const MAX_ACCUSERS = 16

/**
 * Accepted results a requester remembers the workers of, for healing within
 * a session (stored results are tracked in the result store without limit).
 * Bounds the memory of a peer that runs for days: about 100 bytes each.
 */
export const HEALING_MEMORY = 100_000

/** A requester runs a disputed job itself (an audit) only when the job's time limit is at most this. */
export const AUDIT_MAX_TIMEOUT_MS = 60_000

/** The spot-check rate never falls below this, however long a worker's record: a liar is always caught in time. */
export const MIN_SPOT_CHECK_RATE = 0.01

/** The storage protocol: one length-prefixed dag-cbor request and its answer per stream (pin, status, challenge, holders, renew). */
export const STORE_PROTOCOL = '/wasmesh/store/1.0.0'

/** Prefixed to a storage receipt before signing: it can never pass for a job receipt or any other signature. */
export const STORAGE_RECEIPT_SIGNING_DOMAIN = 'wasmesh-storage-receipt:v1:'

/** Prefixed to a pin order before signing. */
export const PIN_ORDER_SIGNING_DOMAIN = 'wasmesh-pin-order:v1:'

/** Largest store-protocol message: the biggest, a holding answer, carries an order, a renewal, a receipt and up to 64 holder ids. */
export const MAX_STORE_MESSAGE_BYTES = 64 * 1024

/** Holders listed in one pin record: more replicas than this are not asked for. */
export const MAX_REPLICAS = 16

/** Peers a store request may name as renewers. */
export const MAX_RENEWERS = 16

/** How long a pin lasts unless the owner says otherwise: renew it before then. */
export const DEFAULT_PIN_TTL_MS = 30 * 24 * 60 * 60 * 1000

/**
 * Mean time between two checks a holder makes of its fellow holders: one
 * random block of one pin, from one other holder. Also how often lost
 * holders are looked for and expired pins collected. A lost or failing
 * holder is noticed within about two of these.
 */
export const STORAGE_CHECK_INTERVAL_MS = 60_000

/** How long a checked holder has to return the block it was asked for. */
export const CHALLENGE_TIMEOUT_MS = 10_000

/** How long a holder takes to fetch and check content it was asked to pin, per MiB, on top of FETCH_TIMEOUT_MS. */
export const PIN_FETCH_MS_PER_MIB = 2_000

/** The share of a holder's offer one owner may fill: a single uploader cannot crowd everyone else out. */
export const OWNER_SHARE = 0.5

/** How long `store`, `holders` and `get` wait for storage adverts after joining. */
export const STORAGE_PEER_WAIT_MS = 10_000

export const SOFTWARE_VERSION = '0.1.0'

/** The gossipsub topic that carries signed function manifests (docs/functions.md). */
export const FUNCTIONS_TOPIC = '/wasmesh/functions/1'

/** The stream protocol a peer asks its neighbours' known manifests with, so a late joiner learns functions deployed before it came. */
export const FUNCTIONS_PROTOCOL = '/wasmesh/functions/1.0.0'

/** Prefixed to a manifest's payload before the owner signs it: a manifest signature is never valid as any other signature. */
export const FUNCTION_SIGNING_DOMAIN = 'wasmesh-function:v1:'

/** Largest signed manifest accepted: a name, a CID, limits and a few fixed environment variables. */
export const MAX_MANIFEST_BYTES = 16 * 1024

/** Functions a peer remembers (newest version of each): bounds memory against a flood of deployments. */
export const MAX_KNOWN_FUNCTIONS = 4096

/** How long a peer waits for a neighbour's manifest list (and a caller for an unknown address to turn up). */
export const FUNCTION_SYNC_TIMEOUT_MS = 5_000

/**
 * Workers `deploy` has run the function on before it returns: each then holds
 * the module and keeps it compiled, so the function runs while its owner is
 * offline, without a cold start.
 */
export const DEPLOY_REPLICAS = 1

/** Storage peers `deploy` pins a function's module on, when that many offer storage (fewer: as many as do). */
export const DEPLOY_STORE_REPLICAS = 3

/** Largest HTTP request body the gateway and the Service Worker forward to a function (bigger ones get 413). */
export const MAX_FUNCTION_BODY_BYTES = 1024 * 1024
