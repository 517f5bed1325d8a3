/* The pushdown automaton's configurations, byte tables and token-trie walk, in C.

   The same automaton as grammar/pda.py (read its docstring first), with every object an integer:
   - a *stack* is a node of a hash-consed tree: node = (parent node, top DFA state); node 0 is the
     empty stack END, node 1 is the cut-off context EXIT = (MARK,); a frame's depth counts its
     frames above END or EXIT;
   - a *configuration* of a level (k frames kept; k = 0 keeps all) is a sorted set of stack nodes,
     interned per level; config 0 is the dead (empty) configuration;
   - T[config][byte] -> config is filled one cell at a time when a walk or a step first needs it;
     a configuration's row has one cell per byte class (the bytes that every top state steps
     alike), found through a byte -> class map shared by every configuration with the same cuts;
   - the rule DFA (nfa.RuleDfa's, determinized here from the NFA's arrays) is lazy too: a dstate
     is an epsilon-closed set of NFA states; its flags, byte classes and calls are computed the
     first time a stack with that top is closed or stepped, each transition (for its whole byte
     class) the first time a step needs it;
   - masks: a level's mask of a configuration (accepted / context-dependent bit words, one trie
     scan, gs_scan) is cached here, and so is each full stack's final mask (stack_mask,
     gs_config_mask).

   Everything grows with the states met and is freed with the core (gs_core_free); the per-stack
   mask cache alone is capped (STACK_MASKS).  Not thread-safe: callers serialize each core. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define UNKNOWN ((int32_t)0xfefefefe)  /* a table cell not computed yet (a byte pattern: rows
                                           start as one memset) */
#define DEAD (-1)
#define S_END 0
#define S_EXIT 1
#define MAX_LEVELS 8

#define T_UNKNOWN ((int32_t)0xfdfdfdfd)  /* a DFA transition not computed yet (a byte pattern) */

/* one trie node in preorder, packed so that a visit reads one cache line (vocab.py: pre_nodes) */
typedef struct {
    int32_t size;    /* nodes in its subtree, itself included */
    int32_t tlo;     /* its tokens: tok[tlo .. next node's tlo) */
    uint16_t depth;  /* bytes from the root */
    uint8_t byte;    /* its last byte */
    uint8_t pad;
    uint16_t height; /* levels below it */
    uint16_t pad2;
} Node;

typedef struct {
    int32_t k;                       /* frames kept; 0: all */
    int64_t n, cap;                  /* configurations */
    int64_t *off; int32_t *len;      /* config -> its stacks: pool[off .. off + len) */
    int32_t *pool; int64_t pool_n, pool_cap;
    int32_t **rows;                  /* T rows (one int32 per byte class), NULL until a cell is
                                        asked for */
    const uint8_t **cmap;            /* [cap]: the row's byte -> class map (set with the row) */
    uint8_t *has_exit, *has_end;
    uint64_t *selfloop;              /* [cap][4]: bytes whose known cell leads back */
    int32_t *htab; int64_t hcap;     /* content hash -> config (-1 empty) */
    int64_t *cl_off; int32_t *cl_len; int64_t cl_cap;  /* closure memo per stack node */
    int32_t *cl_cfg;                 /* [cl_cap]: the configuration of that closure alone, -1 until
                                        closure_union first makes it (a cell moving one stack) */
    int32_t *cl_pool; int64_t cl_n, cl_pool_cap;
    int32_t *trunc; int64_t trunc_cap;                 /* stack node -> its k-truncation */
    uint32_t *seen; uint32_t seen_epoch;               /* successors met by the current walk */
    uint32_t **macc, **mdep;         /* [cap]: the cached mask (accepted, dependent bit words)
                                        of a configuration, NULL until gs_level_mask (mdep
                                        stays NULL when no token is context-dependent) */
    int32_t **msucc; int32_t *nsucc; /* its successors (live end configurations) */
    uint8_t *many;                   /* some token is context-dependent */
    int64_t n_masks;
    uint64_t *ccut;                  /* [cap][4]: the union of the top states' class cuts (set
                                        when the row is allocated): bytes between two cuts step
                                        alike from the configuration */
    uint64_t *keep;                  /* [cap][4]: bytes that cannot kill it (config_keep): the
                                        largest keep set of its stacks' tops (keep_bytes) */
    uint8_t *kany;                   /* [cap]: 0 keep set not computed yet, 1 empty, 2 not */
    uint64_t *uni; int32_t *uni_t;   /* [cap][4], [cap]: bytes known to all lead to uni_t (-3:
                                        none yet), what uniform_target has found so far */
    uint8_t *pclosed;                /* plain_closed's memo: 0 unknown, 1 yes, 2 no, 3 being
                                        explored */
    uint8_t *sexact;                 /* the cached mask's successors are all of them (not
                                        when its scan took the plain tokens without a chain) */
} Level;

typedef struct {
    /* the byte-level NFA (CSR arrays owned by the Python Nfa's export, see pda_native.py) */
    int64_t nfa_n;
    const int32_t *eb_off, *eb;      /* byte edges of s: eb[3i .. 3i+2] = (lo, hi, target) */
    const int32_t *eps_off, *eps;    /* epsilon targets */
    const int32_t *nc_off, *nc;      /* calls: nc[2i .. 2i+1] = (rule, return state) */
    const uint8_t *nfa_final;        /* s is its rule's final state */
    uint32_t *nstamp; uint32_t nepoch;
    int32_t *nbuf; int64_t nbuf_cap;
    /* the rule DFA, determinized lazily: a dstate is an epsilon-closed set of NFA states */
    int64_t nd, dcap;
    int64_t *dset_off; int32_t *dset_len;
    int32_t *dset_pool; int64_t dset_n, dset_cap;
    int32_t *dtab; int64_t dhcap;
    uint8_t *ready, *final, *has_bytes;  /* ready: flags, classes and calls computed */
    uint8_t *ploop;                  /* plain_stable's memo: 0 unknown, 1 yes, 2 no */
    uint8_t *nstable;                /* nfa_immortal's memo per NFA state: 0 unknown, 1, 2 */
    uint64_t *nloop;                 /* [nfa_n][4]: loop_bytes' memo (allocated on first use) */
    int16_t *nloop_pop;              /* [nfa_n]: nloop[x]'s size, -1 until computed */
    uint32_t *lstamp; uint32_t lepoch; int32_t *lbuf, *lbuf2;  /* loop_bytes scratch (LOOP_MAX each) */
    uint64_t *dkeep;                 /* [dcap][4]: bytes that one NFA state of the dstate reads
                                        back into itself (see keep_bytes; set when ready) */
    int16_t *dkeep_pop;              /* [dcap]: its size */
    int32_t *imap, *iset; int64_t *ieoff; uint8_t *icand;  /* nfa_immortal's search (IMAP slots,
                                        IMMORTAL_MAX states) */
    uint32_t *islot; int32_t imap_n; /* the map's slots the last search filled (cleared by the next
                                        one: not the whole map, 16 KiB, each time) */
    int32_t *iedge; int64_t iedge_cap; int32_t *iclos; int64_t iclos_cap;
    int32_t **trans;                 /* [dcap]: one cell per byte class (set when ready),
                                        T_UNKNOWN until a step needs it */
    const uint8_t **tmap;            /* [dcap]: its byte -> class map (see class_map) */
    uint64_t *dcut;                  /* [dcap][4]: bit x set where a byte class starts (x in
                                        1..255): bytes of one class step alike */
    int64_t *call_off; int32_t *call_n;
    int32_t *calls; int64_t calls_n, calls_cap;  /* (rule, return dstate) pairs */
    int32_t *pairs; int64_t pairs_cap;
    int32_t *starts; int32_t n_rules;  /* starts[r]: the dstate entering rule r */
    /* stack nodes */
    int64_t ns, scap;
    int32_t *sparent, *sstate, *sdepth;
    uint32_t *stamp_cl, *stamp_un; uint32_t epoch_cl, epoch_un;
    int32_t *shtab; int64_t shcap;
    /* scratch */
    int32_t *buf; int64_t buf_cap;
    int32_t *todo; int64_t todo_cap;
    Level lv[MAX_LEVELS]; int nlv;
    /* the vocabulary trie in preorder (arrays owned by the Python Vocabulary, see vocab.py) */
    const Node *node;                /* [N + 1]: the last one only closes the token ranges */
    const uint64_t *pre_sub;         /* [N][4]: the bytes on the edges strictly below each node */
    const int32_t *tok_len;
    const int32_t *pre_parent, *tok_node;  /* preorder parent; token id -> its node (-1: none) */
    int64_t vocab_size, words;       /* tokens, 32-bit words of a mask */
    const uint8_t *tok_bytes; const int64_t *tok_off;  /* token t's bytes: [tok_off[t], [t + 1]) */
    uint32_t **smask; int64_t smask_cap, n_smask;  /* per stack node: its cached mask (words) */
    uint8_t *smask_own;              /* [smask_cap]: the mask is its own copy (else it is the
                                        first level's cached mask itself, freed with the level) */
    uint32_t *sdep;                  /* level_mask's scratch dependent words (zero between scans) */
    const int32_t *mlevels; int32_t n_mlevels, mfull;  /* gs_set_levels: the levels stack masks go
                                        through, the level of full configurations */
    const uint32_t *meos;            /* the EOS words */
    uint32_t *need; uint32_t need_epoch;  /* a restricted walk's nodes on a path to a token */
    const int32_t *tok;              /* tokens in preorder: their ids */
    const int32_t *big_slot;         /* [N]: row of big_words of the tokens strictly below, or -1 */
    const uint32_t *big_words;       /* [S][words] (vocab.py: big_below_words) */
    const uint64_t *big_lens;        /* [S][4]: their lengths (vocab.py: big_below_lens), or NULL */
    const uint64_t *plain_set;       /* [4]: the plain bytes (vocab.py: PLAIN_BYTES) */
    const uint8_t *plain_flags;      /* [N] (vocab.py: plain_node_flags) */
    const int32_t *plain_next;       /* [N] (vocab.py: plain_next) */
    const uint32_t *plain_le;        /* [plain_max + 1][words]: plain tokens of length <= l */
    const uint8_t *plain_any;        /* [plain_max + 1]: some plain token has length l */
    int32_t plain_max;
    int32_t *pchain; uint8_t *pflag; /* the plain chain's configuration and flag per length */
    int32_t *pq; int64_t pq_cap;     /* plain_closed's queue */
    int no_closed;                   /* scans must list every successor: no plain_closed skip */
    int succ_partial;                /* the last scan took plain tokens without their ends */
    int64_t n_nodes;
    int32_t root_from[257];          /* the first child of the root (preorder) whose byte is >= b;
                                        n_nodes past the last */
    int32_t *dst; uint8_t *dfl;      /* the walk's state per depth, its children's flag */
    int32_t **drow;                  /* the walk's table row per depth */
    const uint8_t **dmap;            /* and its byte -> class map */
    uint8_t **cmaps; int64_t n_cmaps, cmaps_cap;  /* the byte -> class maps (256 bytes each, one
                                        per distinct set of class cuts met) */
    int32_t *cmap_tab; int64_t cmap_hcap;          /* cuts hash -> map index (-1 empty) */
    int32_t *chain; uint8_t *fchain; /* a chain skip's state and flag per depth below its node */
    uint8_t *relmet;                 /* chain_verdicts' scratch per depth (all zero between calls) */
    int32_t *succ; int64_t succ_n, succ_cap;
    char *arena; int64_t arena_left; /* table rows (configurations' and DFA states'), carved in
                                        order from 64 KiB blocks chained through their first
                                        word: no malloc a row, rows met together lie together */
} Core;

#define ARENA_BLOCK ((int64_t)64 << 10)

/* free a chain of blocks linked through their first word (the arena's, the mask pool's) */
static void free_chain(void *b) {
    while (b) {
        void *next = *(void **)b;
        free(b);
        b = next;
    }
}

/* n bytes (a multiple of 4, at most 1 KiB: a row of 256 classes) from the core's arena, freed with
   the core; NULL when out of memory */
static void *arena_take(Core *h, int64_t n) {
    if (n > h->arena_left) {
        char *b = malloc((size_t)ARENA_BLOCK);
        if (!b) return NULL;
        *(char **)b = h->arena;  /* the chain of blocks (the first 16 bytes hold the link) */
        h->arena = b;
        h->arena_left = ARENA_BLOCK - 16;
    }
    void *p = h->arena + (ARENA_BLOCK - h->arena_left);
    h->arena_left -= n;
    return p;
}

static int grow(void **p, int64_t *cap, int64_t need, size_t elem) {
    if (need <= *cap) return 0;
    int64_t c = *cap ? *cap : 64;
    while (c < need) c *= 2;
    void *q = realloc(*p, (size_t)c * elem);
    if (!q) return -1;
    *p = q;
    *cap = c;
    return 0;
}

static inline uint64_t mix(uint64_t x) {
    x ^= x >> 33; x *= 0xff51afd7ed558ccdULL; x ^= x >> 33; x *= 0xc4ceb9fe1a85ec53ULL; x ^= x >> 33;
    return x;
}

/* ---------------------------------------------------------------- stacks */

static int64_t stack_new(Core *h, int32_t parent, int32_t state, int32_t depth) {
    int64_t cap = h->scap;
    if (h->ns == cap) {
        int64_t c0 = cap;
        if (grow((void **)&h->sparent, &cap, h->ns + 1, 4)) return -1;
        cap = c0; if (grow((void **)&h->sstate, &cap, h->ns + 1, 4)) return -1;
        cap = c0; if (grow((void **)&h->sdepth, &cap, h->ns + 1, 4)) return -1;
        cap = c0; if (grow((void **)&h->stamp_cl, &cap, h->ns + 1, 4)) return -1;
        cap = c0; if (grow((void **)&h->stamp_un, &cap, h->ns + 1, 4)) return -1;
        memset(h->stamp_cl + c0, 0, (size_t)(cap - c0) * 4);
        memset(h->stamp_un + c0, 0, (size_t)(cap - c0) * 4);
        h->scap = cap;
    }
    int64_t id = h->ns++;
    h->sparent[id] = parent; h->sstate[id] = state; h->sdepth[id] = depth;
    return id;
}

static int rehash_stacks(Core *h) {
    int64_t cap = h->shcap ? h->shcap * 2 : 1024;
    int32_t *t = malloc((size_t)cap * 4);
    if (!t) return -1;
    memset(t, 0xff, (size_t)cap * 4);
    for (int64_t i = 2; i < h->ns; i++) {
        uint64_t j = mix(((uint64_t)(uint32_t)h->sparent[i] << 32) | (uint32_t)h->sstate[i]) & (cap - 1);
        while (t[j] >= 0) j = (j + 1) & (cap - 1);
        t[j] = (int32_t)i;
    }
    free(h->shtab);
    h->shtab = t;
    h->shcap = cap;
    return 0;
}

/* the stack `parent` with one more frame `state` on top (interned) */
int32_t gs_push(Core *h, int32_t parent, int32_t state) {
    if ((h->ns + 1) * 2 > h->shcap && rehash_stacks(h)) return -1;
    uint64_t j = mix(((uint64_t)(uint32_t)parent << 32) | (uint32_t)state) & (h->shcap - 1);
    for (;;) {
        int32_t s = h->shtab[j];
        if (s < 0) break;
        if (h->sparent[s] == parent && h->sstate[s] == state) return s;
        j = (j + 1) & (h->shcap - 1);
    }
    int64_t id = stack_new(h, parent, state, h->sdepth[parent] + 1);
    if (id < 0) return -1;
    h->shtab[j] = (int32_t)id;
    return (int32_t)id;
}

/* the top k frames of s over EXIT (s itself when it has at most k) */
static int32_t truncate(Core *h, Level *L, int32_t s) {
    const int32_t k = L->k;
    if (!k || h->sdepth[s] <= k) return s;
    if (s >= L->trunc_cap) {
        int64_t c0 = L->trunc_cap;
        if (grow((void **)&L->trunc, &L->trunc_cap, (int64_t)s + 1, 4)) return -1;
        memset(L->trunc + c0, 0xff, (size_t)(L->trunc_cap - c0) * 4);
    }
    if (L->trunc[s] >= 0) return L->trunc[s];
    int32_t frames[256], *fr = k <= 256 ? frames : malloc((size_t)k * 4), x = s;
    if (!fr) return -1;
    for (int32_t i = k - 1; i >= 0; i--) { fr[i] = h->sstate[x]; x = h->sparent[x]; }
    int32_t r = S_EXIT;
    for (int32_t i = 0; i < k && r >= 0; i++) r = gs_push(h, r, fr[i]);
    if (fr != frames) free(fr);
    if (r >= 0) L->trunc[s] = r;
    return r;
}

/* ---------------------------------------------------------------- the rule DFA */

/* the highest set bit at or below b (0 if none) and the lowest set bit above b (256 if none) */
static inline int bit_at_or_below(const uint64_t *v, int b) {
    for (int w = b >> 6; w >= 0; w--) {
        uint64_t x = v[w];
        if (w == b >> 6) x &= (b & 63) == 63 ? ~0ULL : ((1ULL << ((b & 63) + 1)) - 1);
        if (x) return 64 * w + 63 - __builtin_clzll(x);
    }
    return 0;
}

static inline int bit_above(const uint64_t *v, int b) {
    for (int w = b >> 6; w < 4; w++) {
        uint64_t x = v[w];
        if (w == b >> 6) x &= (b & 63) == 63 ? 0 : ~((1ULL << ((b & 63) + 1)) - 1);
        if (x) return 64 * w + __builtin_ctzll(x);
    }
    return 256;
}


/* the bytes lo .. hi (inclusive) added to the 256-bit set v */
static inline void set_range(uint64_t *v, int lo, int hi) {
    for (int w = lo >> 6; w <= hi >> 6; w++) {
        const int a = w == lo >> 6 ? lo & 63 : 0, z = w == hi >> 6 ? hi & 63 : 63;
        v[w] |= (z == 63 ? ~0ULL : (1ULL << (z + 1)) - 1) & ~((1ULL << a) - 1);
    }
}

/* Walking a byte set sb one byte per byte class (classes: the runs between the cuts in `cut`):
   for (b = first_byte(sb); b < 256; b = next_class_byte(sb, cut, b)) visits the first byte of sb
   in each class that meets sb. */
/* every byte of the set a is in the set b (256-bit sets) */
static inline int subset4(const uint64_t *a, const uint64_t *b) {
    return !((a[0] & ~b[0]) | (a[1] & ~b[1]) | (a[2] & ~b[2]) | (a[3] & ~b[3]));
}

static inline int first_byte(const uint64_t *sb) {
    return (sb[0] & 1) ? 0 : bit_above(sb, 0);
}

static inline int next_class_byte(const uint64_t *sb, const uint64_t *cut, int b) {
    return bit_above(sb, bit_above(cut, b) - 1);
}

static int cmp_i32(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

static void sort_i32(int32_t *v, int64_t n) {
    if (n < 24) {  /* small: insertion sort */
        for (int64_t i = 1; i < n; i++) {
            int32_t x = v[i];
            int64_t j = i - 1;
            while (j >= 0 && v[j] > x) { v[j + 1] = v[j]; j--; }
            v[j + 1] = x;
        }
    } else {
        qsort(v, (size_t)n, 4, cmp_i32);
    }
}

static uint64_t hash_ids(const int32_t *ids, int64_t n) {
    uint64_t x = 0x9e3779b97f4a7c15ULL ^ (uint64_t)n;
    for (int64_t i = 0; i < n; i++) x = mix(x ^ (uint32_t)ids[i]) + 0x9e3779b97f4a7c15ULL;
    return x;
}

/* Open-addressing tables of interned id sets (DFA states: NFA-state sets; a level's
   configurations: stack sets): set i is pool[off[i] .. off[i] + len[i]), table slots hold set
   ids (-1 empty), capacity a power of two kept at least twice the number of sets. */
static int set_rehash(int32_t **tab, int64_t *cap, const int32_t *pool, const int64_t *off,
                      const int32_t *len, int64_t n) {
    int64_t c = *cap ? *cap * 2 : 256;
    int32_t *t = malloc((size_t)c * 4);
    if (!t) return -1;
    memset(t, 0xff, (size_t)c * 4);
    for (int64_t i = 0; i < n; i++) {
        uint64_t j = hash_ids(pool + off[i], len[i]) & (c - 1);
        while (t[j] >= 0) j = (j + 1) & (c - 1);
        t[j] = (int32_t)i;
    }
    free(*tab);
    *tab = t;
    *cap = c;
    return 0;
}

/* the id of the set ids[0..n) in the table, or -1 with *slot where it goes */
static int32_t set_find(const int32_t *tab, int64_t cap, const int32_t *pool, const int64_t *off,
                        const int32_t *len, const int32_t *ids, int64_t n, uint64_t *slot) {
    uint64_t j = hash_ids(ids, n) & (cap - 1);
    for (;; j = (j + 1) & (cap - 1)) {
        const int32_t i = tab[j];
        if (i < 0) break;
        if (len[i] == n && !memcmp(pool + off[i], ids, (size_t)n * 4)) return i;
    }
    *slot = j;
    return -1;
}

/* the dstate of the NFA states nbuf[0..m) and everything they reach by epsilons (-1: error) */
/* the NFA states (*buf)[0..m), without repeats, and everything they reach by epsilons, in
   place in *buf (grown as needed; unsorted): their number, or -1 when out of memory */
static int64_t eps_closure(Core *h, int32_t **buf, int64_t *cap, int64_t m) {
    if (++h->nepoch == 0) { memset(h->nstamp, 0, (size_t)h->nfa_n * 4); h->nepoch = 1; }
    const uint32_t ep = h->nepoch;
    int64_t k = 0;
    for (int64_t i = 0; i < m; i++) {
        int32_t x = (*buf)[i];
        if (h->nstamp[x] != ep) { h->nstamp[x] = ep; (*buf)[k++] = x; }
    }
    for (int64_t i = 0; i < k; i++) {
        const int32_t x = (*buf)[i];
        const int32_t lo = h->eps_off[x], hi = h->eps_off[x + 1];
        if (grow((void **)buf, cap, k + (hi - lo), 4)) return -1;
        for (int32_t e = lo; e < hi; e++) {
            const int32_t t = h->eps[e];
            if (h->nstamp[t] != ep) { h->nstamp[t] = ep; (*buf)[k++] = t; }
        }
    }
    return k;
}

static int32_t dfa_intern_closure(Core *h, int64_t m) {
    const int64_t k = eps_closure(h, &h->nbuf, &h->nbuf_cap, m);
    if (k < 0) return -1;
    sort_i32(h->nbuf, k);
    const int32_t *ids = h->nbuf;
    if ((h->nd + 1) * 2 > h->dhcap
        && set_rehash(&h->dtab, &h->dhcap, h->dset_pool, h->dset_off, h->dset_len, h->nd)) return -1;
    uint64_t j;
    const int32_t found = set_find(h->dtab, h->dhcap, h->dset_pool, h->dset_off, h->dset_len, ids, k, &j);
    if (found >= 0) return found;
    if (h->nd == h->dcap) {
        int64_t c0 = h->dcap, cap = c0, need = h->nd + 1;
        if (grow((void **)&h->dset_off, &cap, need, 8)) return -1;
        cap = c0; if (grow((void **)&h->dset_len, &cap, need, 4)) return -1;
        cap = c0; if (grow((void **)&h->ready, &cap, need, 1)) return -1;
        cap = c0; if (grow((void **)&h->final, &cap, need, 1)) return -1;
        cap = c0; if (grow((void **)&h->has_bytes, &cap, need, 1)) return -1;
        cap = c0; if (grow((void **)&h->ploop, &cap, need, 1)) return -1;
        cap = c0; if (grow((void **)&h->trans, &cap, need, sizeof(int32_t *))) return -1;
        cap = c0; if (grow((void **)&h->tmap, &cap, need, sizeof(uint8_t *))) return -1;
        cap = c0; if (grow((void **)&h->dcut, &cap, need, 32)) return -1;
        cap = c0; if (grow((void **)&h->dkeep, &cap, need, 32)) return -1;
        cap = c0; if (grow((void **)&h->dkeep_pop, &cap, need, 2)) return -1;
        cap = c0; if (grow((void **)&h->call_off, &cap, need, 8)) return -1;
        cap = c0; if (grow((void **)&h->call_n, &cap, need, 4)) return -1;
        h->dcap = cap;
    }
    if (grow((void **)&h->dset_pool, &h->dset_cap, h->dset_n + k, 4)) return -1;
    const int64_t d = h->nd++;
    memcpy(h->dset_pool + h->dset_n, ids, (size_t)k * 4);
    h->dset_off[d] = h->dset_n;
    h->dset_len[d] = (int32_t)k;
    h->dset_n += k;
    h->ready[d] = 0;
    h->ploop[d] = 0;
    h->trans[d] = NULL;
    h->dtab[j] = (int32_t)d;
    return (int32_t)d;
}

static int cmp_pair(const void *a, const void *b) {
    const int32_t *x = a, *y = b;
    return x[0] != y[0] ? (x[0] > y[0]) - (x[0] < y[0]) : (x[1] > y[1]) - (x[1] < y[1]);
}

static const uint8_t *class_map(Core *h, const uint64_t *cut);

#define KEEP_MIN_NODES 8  /* smaller subtrees are walked: cheaper than the keep check */
#define LOOP_MAX 16     /* NFA states one epsilon closure of loop_bytes explores at most */
#define KEEP_TRIES 32  /* NFA states of a dstate whose loop bytes are looked at, at most */

/* The NFA states that epsilons lead t to (t first), breadth-first into buf, at most LOOP_MAX
   (the search stops when buf is full): their number, or -1 as soon as it meets `stop` (-1: none). */
static int64_t eps_bounded(Core *h, int32_t t, int32_t *buf, int32_t stop) {
    if (++h->lepoch == 0) { memset(h->lstamp, 0, (size_t)h->nfa_n * 4); h->lepoch = 1; }
    const uint32_t ep = h->lepoch;
    int64_t k = 0;
    buf[k++] = t;
    h->lstamp[t] = ep;
    for (int64_t i = 0; i < k; i++) {
        const int32_t y = buf[i];
        if (y == stop) return -1;
        for (int32_t e = h->eps_off[y]; e < h->eps_off[y + 1]; e++) {
            const int32_t z = h->eps[e];
            if (h->lstamp[z] == ep) continue;
            if (k == LOOP_MAX) return k;
            h->lstamp[z] = ep;
            buf[k++] = z;
        }
    }
    return k;
}

/* The bytes that NFA state x reads back into itself (a byte edge from a state of x's epsilon
   closure to one whose closure holds x: a loop's body, like a name's letters): a stack whose top
   dstate holds x keeps x after any string of them, so it stays live.  Memoized per state; the
   closures looked at are bounded (LOOP_MAX: past it the bytes found so far).  Their number (the
   set is h->nloop[x]), or -1 on error. */
static int loop_bytes(Core *h, int32_t x) {
    if (!h->nloop) {
        if (!(h->nloop = calloc((size_t)h->nfa_n, 32)) || !(h->nloop_pop = malloc((size_t)h->nfa_n * 2))
            || !(h->lstamp = calloc((size_t)h->nfa_n, 4)) || !(h->lbuf = malloc(LOOP_MAX * 4))
            || !(h->lbuf2 = malloc(LOOP_MAX * 4))) return -1;
        memset(h->nloop_pop, 0xff, (size_t)h->nfa_n * 2);
    }
    uint64_t *out = h->nloop + (int64_t)x * 4;
    if (h->nloop_pop[x] >= 0) return h->nloop_pop[x];
    const int64_t k = eps_bounded(h, x, h->lbuf, -1);  /* x's closure (lbuf2: each target's) */
    for (int64_t i = 0; i < k; i++) {
        const int32_t y = h->lbuf[i];
        int32_t last = -1, back = 0;  /* consecutive edges often share their target */
        for (int32_t e = h->eb_off[y]; e < h->eb_off[y + 1]; e++) {
            const int lo = h->eb[3 * e], hi = h->eb[3 * e + 1];
            const int32_t t = h->eb[3 * e + 2];
            if (t != last) { back = eps_bounded(h, t, h->lbuf2, x) < 0; last = t; }
            if (back) set_range(out, lo, hi);
        }
    }
    int pop = 0;
    for (int w = 0; w < 4; w++) {  /* (SWAR: __builtin_popcountll is a libgcc call without -mpopcnt) */
        uint64_t v = out[w] - ((out[w] >> 1) & 0x5555555555555555ULL);
        v = (v & 0x3333333333333333ULL) + ((v >> 2) & 0x3333333333333333ULL);
        pop += (int)((((v + (v >> 4)) & 0x0f0f0f0f0f0f0f0fULL) * 0x0101010101010101ULL) >> 56);
    }
    return h->nloop_pop[x] = (int16_t)pop;
}

/* dstate d's keep set (h->dkeep[d], computed on first use): the largest loop_bytes of its NFA
   states (the first KEEP_TRIES that read a byte).  Its size, or -1 on error. */
static int keep_bytes(Core *h, int32_t d) {
    if (h->dkeep_pop[d] >= 0) return h->dkeep_pop[d];
    int32_t best = -1, pop = 0;
    const int32_t n = h->dset_len[d];
    for (int32_t i = 0, tried = 0; i < n && tried < KEEP_TRIES; i++) {
        const int32_t x = h->dset_pool[h->dset_off[d] + i];
        if (h->eb_off[x] == h->eb_off[x + 1]) continue;
        tried++;
        const int p = loop_bytes(h, x);
        if (p < 0) return -1;
        if (p > pop) { pop = p; best = x; }
    }
    if (best >= 0) memcpy(h->dkeep + (int64_t)d * 4, h->nloop + (int64_t)best * 4, 32);
    else memset(h->dkeep + (int64_t)d * 4, 0, 32);
    h->dkeep_pop[d] = (int16_t)pop;
    return pop;
}

/* compute dstate d's flags, byte classes and calls (grouped by callee: one return dstate each) */
static int dfa_make_ready(Core *h, int32_t d) {
    int64_t np = 0;
    uint64_t cut[5] = {0, 0, 0, 0, 0};  /* bit x: a byte class starts at x (x = 256: past the end) */
    uint8_t fin = 0, hb = 0;
    for (int32_t i = 0; i < h->dset_len[d]; i++) {
        const int32_t x = h->dset_pool[h->dset_off[d] + i];
        fin |= h->nfa_final[x];
        for (int32_t e = h->eb_off[x]; e < h->eb_off[x + 1]; e++) {
            hb = 1;
            const int lo = h->eb[3 * e], hi1 = h->eb[3 * e + 1] + 1;
            cut[lo >> 6] |= 1ULL << (lo & 63);
            cut[hi1 >> 6] |= 1ULL << (hi1 & 63);
        }
        const int32_t lo = h->nc_off[x], hi = h->nc_off[x + 1];
        if (grow((void **)&h->pairs, &h->pairs_cap, 2 * (np + hi - lo), 4)) return -1;
        for (int32_t e = lo; e < hi; e++) {
            h->pairs[2 * np] = h->nc[2 * e];
            h->pairs[2 * np + 1] = h->nc[2 * e + 1];
            np++;
        }
    }
    uint64_t *dc = h->dcut + (int64_t)d * 4;  /* byte classes: the runs between two cuts */
    dc[0] = cut[0] & ~1ULL;  /* (a cut at 0 or 256 splits nothing) */
    dc[1] = cut[1]; dc[2] = cut[2]; dc[3] = cut[3];
    const uint8_t *map = class_map(h, h->dcut + (int64_t)d * 4);
    if (!map) return -1;
    int32_t *row = arena_take(h, (int64_t)(map[255] + 1) * 4);
    if (!row) return -1;
    memset(row, 0xfd, (size_t)(map[255] + 1) * 4);  /* T_UNKNOWN */
    h->trans[d] = row;
    h->tmap[d] = map;
    h->final[d] = fin;
    h->has_bytes[d] = hb;
    if (np > 1) qsort(h->pairs, (size_t)np, 8, cmp_pair);
    h->call_off[d] = h->calls_n;
    int32_t n_calls = 0;
    for (int64_t i = 0; i < np;) {  /* one group per callee rule */
        const int32_t rule = h->pairs[2 * i];
        int64_t j = i;
        while (j < np && h->pairs[2 * j] == rule) j++;
        if (grow((void **)&h->nbuf, &h->nbuf_cap, j - i, 4)) return -1;
        for (int64_t q = i; q < j; q++) h->nbuf[q - i] = h->pairs[2 * q + 1];
        const int32_t ret = dfa_intern_closure(h, j - i);
        if (ret < 0 || grow((void **)&h->calls, &h->calls_cap, h->calls_n + 2, 4)) return -1;
        h->calls[h->calls_n++] = rule;
        h->calls[h->calls_n++] = ret;
        n_calls++;
        i = j;
    }
    h->call_n[d] = n_calls;
    h->dkeep_pop[d] = -1;  /* keep_bytes: on first use */
    h->ready[d] = 1;
    return 0;
}

static inline int ensure_dfa(Core *h, int32_t d) {
    return h->ready[d] ? 0 : dfa_make_ready(h, d);
}

/* dstate d's transition on byte b (d ready): a dstate, DEAD, or T_UNKNOWN on error */
static int32_t dfa_step(Core *h, int32_t d, int b) {
    const int k = h->tmap[d][b];
    int32_t t = h->trans[d][k];
    if (t != T_UNKNOWN) return t;
    int64_t m = 0;
    for (int32_t i = 0; i < h->dset_len[d]; i++) {
        const int32_t x = h->dset_pool[h->dset_off[d] + i];
        for (int32_t e = h->eb_off[x]; e < h->eb_off[x + 1]; e++) {
            if (h->eb[3 * e] <= b && b <= h->eb[3 * e + 1]) {
                if (grow((void **)&h->nbuf, &h->nbuf_cap, m + 1, 4)) return T_UNKNOWN;
                h->nbuf[m++] = h->eb[3 * e + 2];
            }
        }
    }
    if (m) {
        t = dfa_intern_closure(h, m);
        if (t < 0) return T_UNKNOWN;
    } else {
        t = DEAD;
    }
    h->trans[d][k] = t;  /* for b's whole class */
    return t;
}

/* ---------------------------------------------------------------- mask buffers

   A cold mask is written into memory the process has not touched yet: each fresh 4 KiB page
   costs a page fault (a kernel entry and a page cleared), 1.5 of them per 6 KiB mask of a 49k
   vocabulary.  When a grammar leaves its cache its masks went back to the heap, whose top glibc
   returns to the kernel, so the next grammar's masks faulted again.  Mask buffers freed with a
   core go to a process-wide pool (at most POOL_BYTES, one vocabulary size at a time) that the
   next cores' masks come from.  A spin lock guards it (cores run on several threads; each hold is
   a few instructions, except when a vocabulary of another size empties the pool). */
#define POOL_BYTES ((int64_t)64 << 20)

static struct { char lock; void *head; int64_t n, words; } mpool;

static void pool_lock(void) { while (__atomic_test_and_set(&mpool.lock, __ATOMIC_ACQUIRE)) {} }
static void pool_unlock(void) { __atomic_clear(&mpool.lock, __ATOMIC_RELEASE); }

/* a buffer of `words` words (contents undefined), NULL when out of memory */
static uint32_t *mask_new(int64_t words) {
    void *m = NULL;
    pool_lock();
    if (mpool.head && mpool.words == words) {
        m = mpool.head;
        mpool.head = *(void **)m;
        mpool.n--;
    }
    pool_unlock();
    return m ? m : malloc((size_t)words * 4);
}

/* give back a mask_new buffer (NULL: nothing) */
static void mask_drop(uint32_t *m, int64_t words) {
    if (!m) return;
    void *spill = NULL;  /* the pool's buffers of another vocabulary size, freed outside the lock */
    pool_lock();
    if (mpool.words != words) {
        spill = mpool.head;
        mpool.head = NULL;
        mpool.n = 0;
        mpool.words = words;
    }
    if (words * 4 >= (int64_t)sizeof(void *) && (mpool.n + 1) * words * 4 <= POOL_BYTES) {
        *(void **)m = mpool.head;
        mpool.head = m;
        mpool.n++;
        m = NULL;
    }
    pool_unlock();
    free(m);
    free_chain(spill);
}

/* buffers in the pool now (tests read it) */
int64_t gs_pool_masks(void) {
    pool_lock();
    const int64_t n = mpool.n;
    pool_unlock();
    return n;
}

/* ---------------------------------------------------------------- closures */

/* the closure of one stack at level L (memoized): its stacks are L->cl_pool[*off .. *off + n) */
static int32_t closure(Core *h, Level *L, int32_t s, int64_t *off) {
    if (s >= L->cl_cap) {
        int64_t c0 = L->cl_cap, cap = c0;
        if (grow((void **)&L->cl_off, &cap, (int64_t)s + 1, 8)) return -1;
        cap = c0; if (grow((void **)&L->cl_len, &cap, (int64_t)s + 1, 4)) return -1;
        cap = c0; if (grow((void **)&L->cl_cfg, &cap, (int64_t)s + 1, 4)) return -1;
        memset(L->cl_len + c0, 0xff, (size_t)(cap - c0) * 4);
        memset(L->cl_cfg + c0, 0xff, (size_t)(cap - c0) * 4);
        L->cl_cap = cap;
    }
    if (L->cl_len[s] >= 0) { *off = L->cl_off[s]; return L->cl_len[s]; }
    if (++h->epoch_cl == 0) { memset(h->stamp_cl, 0, (size_t)h->scap * 4); h->epoch_cl = 1; }
    const uint32_t ep = h->epoch_cl;
    int64_t start = L->cl_n, sp = 0;
    if (grow((void **)&h->todo, &h->todo_cap, 1, 4)) return -1;
    h->todo[sp++] = s;
    while (sp) {
        int32_t st = h->todo[--sp];
        if (h->stamp_cl[st] == ep) continue;
        h->stamp_cl[st] = ep;
        int keep = st <= S_EXIT;
        if (!keep) {
            int32_t top = h->sstate[st];
            if (ensure_dfa(h, top)) return -1;
            keep = h->has_bytes[top];
            int32_t nc = h->call_n[top];
            if (grow((void **)&h->todo, &h->todo_cap, sp + nc + 1, 4)) return -1;
            for (int32_t i = 0; i < nc; i++) {
                const int64_t o = h->call_off[top] + 2 * (int64_t)i;
                int32_t rule = h->calls[o], ret = h->calls[o + 1];
                int32_t a = gs_push(h, h->sparent[st], ret);
                if (a < 0 || ensure_dfa(h, h->starts[rule])) return -1;
                int32_t b = gs_push(h, a, h->starts[rule]);
                if (b < 0 || (b = truncate(h, L, b)) < 0) return -1;
                h->todo[sp++] = b;
            }
            if (h->final[top]) h->todo[sp++] = h->sparent[st];
        }
        if (keep) {
            if (grow((void **)&L->cl_pool, &L->cl_pool_cap, L->cl_n + 1, 4)) return -1;
            L->cl_pool[L->cl_n++] = st;
        }
    }
    L->cl_off[s] = start;
    L->cl_len[s] = (int32_t)(L->cl_n - start);
    *off = start;
    return L->cl_len[s];
}

/* ---------------------------------------------------------------- configurations */

#define LEVEL_CAP0 512

/* the id of the configuration made of ids[0..n) (sorted and unique already) */
static int32_t intern_sorted(Level *L, const int32_t *ids, int32_t n) {
    if ((L->n + 1) * 2 > L->hcap && set_rehash(&L->htab, &L->hcap, L->pool, L->off, L->len, L->n)) return -1;
    uint64_t j;
    const int32_t found = set_find(L->htab, L->hcap, L->pool, L->off, L->len, ids, n, &j);
    if (found >= 0) return found;
    if (L->n == L->cap) {
        /* 20 arrays grow together: from 512 configurations at once (a grammar's level rarely
           needs more; growing from 64 copied each array 3 more times) */
        const int64_t need = L->n + 1 < LEVEL_CAP0 ? LEVEL_CAP0 : L->n + 1;
        int64_t c0 = L->cap, cap = c0;
        if (grow((void **)&L->off, &cap, need, 8)) return -1;
        cap = c0; if (grow((void **)&L->len, &cap, need, 4)) return -1;
        cap = c0; if (grow((void **)&L->rows, &cap, need, sizeof(int32_t *))) return -1;
        cap = c0; if (grow((void **)&L->cmap, &cap, need, sizeof(uint8_t *))) return -1;
        cap = c0; if (grow((void **)&L->has_exit, &cap, need, 1)) return -1;
        cap = c0; if (grow((void **)&L->has_end, &cap, need, 1)) return -1;
        cap = c0; if (grow((void **)&L->selfloop, &cap, need, 32)) return -1;
        cap = c0; if (grow((void **)&L->seen, &cap, need, 4)) return -1;
        cap = c0; if (grow((void **)&L->ccut, &cap, need, 32)) return -1;
        cap = c0; if (grow((void **)&L->keep, &cap, need, 32)) return -1;
        cap = c0; if (grow((void **)&L->kany, &cap, need, 1)) return -1;
        cap = c0; if (grow((void **)&L->macc, &cap, need, sizeof(uint32_t *))) return -1;
        cap = c0; if (grow((void **)&L->mdep, &cap, need, sizeof(uint32_t *))) return -1;
        cap = c0; if (grow((void **)&L->msucc, &cap, need, sizeof(int32_t *))) return -1;
        cap = c0; if (grow((void **)&L->nsucc, &cap, need, 4)) return -1;
        cap = c0; if (grow((void **)&L->many, &cap, need, 1)) return -1;
        cap = c0; if (grow((void **)&L->uni, &cap, need, 32)) return -1;
        cap = c0; if (grow((void **)&L->uni_t, &cap, need, 4)) return -1;
        cap = c0; if (grow((void **)&L->pclosed, &cap, need, 1)) return -1;
        cap = c0; if (grow((void **)&L->sexact, &cap, need, 1)) return -1;

        L->cap = cap;
    }
    if (grow((void **)&L->pool, &L->pool_cap, L->pool_n + n, 4)) return -1;
    int64_t c = L->n++;
    memcpy(L->pool + L->pool_n, ids, (size_t)n * 4);
    L->off[c] = L->pool_n;
    L->len[c] = n;
    L->pool_n += n;
    L->rows[c] = NULL;
    L->cmap[c] = NULL;
    L->has_exit[c] = L->has_end[c] = 0;
    for (int32_t i = 0; i < n; i++) {
        L->has_exit[c] |= ids[i] == S_EXIT;
        L->has_end[c] |= ids[i] == S_END;
    }
    memset(L->selfloop + c * 4, c == 0 ? 0xff : 0, 32);  /* the dead configuration loops on all */
    L->seen[c] = 0;
    L->macc[c] = L->mdep[c] = NULL;
    L->msucc[c] = NULL;
    L->nsucc[c] = 0;
    L->many[c] = 0;
    memset(L->uni + c * 4, 0, 32);
    L->uni_t[c] = -3;
    L->pclosed[c] = c == 0 ? 2 : 0;
    L->sexact[c] = 1;
    L->kany[c] = 0;

    L->htab[j] = (int32_t)c;
    return (int32_t)c;
}

static int32_t intern_ids(Core *h, Level *L, int32_t *ids, int32_t n) {
    if (n > 1) {
        sort_i32(ids, n);
        int32_t m = 1;
        for (int32_t i = 1; i < n; i++) if (ids[i] != ids[m - 1]) ids[m++] = ids[i];
        n = m;
    }
    (void)h;
    return intern_sorted(L, ids, n);
}

/* union of the closures of the stacks in[0..n) at level L, interned (in may alias nothing in h) */
static int32_t closure_union(Core *h, Level *L, const int32_t *in, int64_t n) {
    if (n == 1) {  /* most cells move one stack, and a third of them one met before: memoized */
        int64_t off;
        const int32_t len = closure(h, L, in[0], &off);
        if (len < 0) return -1;
        if (L->cl_cfg[in[0]] >= 0) return L->cl_cfg[in[0]];
        if (grow((void **)&h->buf, &h->buf_cap, len, 4)) return -1;
        memcpy(h->buf, L->cl_pool + off, (size_t)len * 4);  /* (a closure lists each stack once) */
        const int32_t c = intern_ids(h, L, h->buf, len);
        if (c >= 0) L->cl_cfg[in[0]] = c;
        return c;
    }
    if (++h->epoch_un == 0) { memset(h->stamp_un, 0, (size_t)h->scap * 4); h->epoch_un = 1; }
    int64_t m = 0;
    for (int64_t i = 0; i < n; i++) {
        int64_t off;
        int32_t len = closure(h, L, in[i], &off);
        if (len < 0) return -1;
        if (grow((void **)&h->buf, &h->buf_cap, m + len, 4)) return -1;
        const uint32_t ep = h->epoch_un;
        for (int32_t j = 0; j < len; j++) {
            int32_t x = L->cl_pool[off + j];
            if (h->stamp_un[x] != ep) { h->stamp_un[x] = ep; h->buf[m++] = x; }
        }
    }
    return intern_ids(h, L, h->buf, (int32_t)m);
}

/* a 256-bit set's hash */
static inline uint64_t hash4(const uint64_t *v) {
    return mix(v[0] ^ mix(v[1] ^ mix(v[2] ^ mix(v[3]))));
}

/* the byte -> class map of the class cuts `cut` (bit x: a class starts at byte x), interned: one
   per distinct set of cuts (NULL when out of memory) */
static const uint8_t *class_map(Core *h, const uint64_t *cut) {
    if ((h->n_cmaps + 1) * 2 > h->cmap_hcap) {  /* rehash */
        int64_t c = h->cmap_hcap ? 2 * h->cmap_hcap : 64;
        int32_t *t = malloc((size_t)c * 4);
        if (!t) return NULL;
        memset(t, 0xff, (size_t)c * 4);
        for (int64_t i = 0; i < h->n_cmaps; i++) {
            uint64_t j = hash4((const uint64_t *)(h->cmaps[i] + 256)) & (c - 1);
            while (t[j] >= 0) j = (j + 1) & (c - 1);
            t[j] = (int32_t)i;
        }
        free(h->cmap_tab);
        h->cmap_tab = t;
        h->cmap_hcap = c;
    }
    uint64_t j = hash4(cut) & (h->cmap_hcap - 1);
    for (;; j = (j + 1) & (h->cmap_hcap - 1)) {
        const int32_t i = h->cmap_tab[j];
        if (i < 0) break;
        if (!memcmp(h->cmaps[i] + 256, cut, 32)) return h->cmaps[i];
    }
    if (grow((void **)&h->cmaps, &h->cmaps_cap, h->n_cmaps + 1, sizeof(uint8_t *))) return NULL;
    uint8_t *m = malloc(256 + 32);  /* the map, then its cuts (the hash key) */
    if (!m) return NULL;
    for (int b = 0, k = 0; b < 256; b++) {
        if (b > 0 && (cut[b >> 6] >> (b & 63) & 1)) k++;
        m[b] = (uint8_t)k;
    }
    memcpy(m + 256, cut, 32);
    h->cmaps[h->n_cmaps] = m;
    h->cmap_tab[j] = (int32_t)h->n_cmaps++;
    return m;
}

/* configuration c's table row, allocated (all UNKNOWN, with its class cuts and byte -> class map)
   on first use */
static int32_t *row_of(Core *h, Level *L, int32_t c) {
    int32_t *row = L->rows[c];
    if (row) return row;
    uint64_t cut[4] = {0, 0, 0, 0};
    for (int32_t i = 0; i < L->len[c]; i++) {
        const int32_t s = L->pool[L->off[c] + i];
        if (s <= S_EXIT) continue;
        const int32_t top = h->sstate[s];
        if (ensure_dfa(h, top)) return NULL;
        for (int w = 0; w < 4; w++) cut[w] |= h->dcut[(int64_t)top * 4 + w];
    }
    const uint8_t *map = class_map(h, cut);
    if (!map) return NULL;
    const int nclass = map[255] + 1;
    row = arena_take(h, (int64_t)nclass * 4);
    if (!row) return NULL;
    memset(row, c == 0 ? 0 : 0xfe, (size_t)nclass * 4);  /* the dead configuration steps to
                                                            itself; others: UNKNOWN */
    memcpy(L->ccut + (int64_t)c * 4, cut, 32);
    L->rows[c] = row;
    L->cmap[c] = map;
    return row;
}

/* configuration c's keep set (L->keep[c]): the largest keep set of its stacks' tops, a byte set
   under which one of its stacks never dies.  Computed on first use; L->kany[c] (returned) is 1
   when it is empty, 2 when not; -1 on error. */
static int config_keep(Core *h, Level *L, int32_t c) {
    if (L->kany[c]) return L->kany[c];
    int32_t best = -1;
    int pop = 0;
    for (int32_t i = 0; i < L->len[c]; i++) {
        const int32_t s = L->pool[L->off[c] + i];
        if (s <= S_EXIT) continue;
        const int32_t top = h->sstate[s];
        if (ensure_dfa(h, top)) return -1;
        const int p = keep_bytes(h, top);
        if (p < 0) return -1;
        if (p > pop) { pop = p; best = top; }
    }
    if (best >= 0) memcpy(L->keep + (int64_t)c * 4, h->dkeep + (int64_t)best * 4, 32);
    return L->kany[c] = pop > 0 ? 2 : 1;
}

/* T[c][b]: one PDA step of configuration c on byte b, stored once for its byte class */
static int32_t cell(Core *h, Level *L, int32_t c, int b) {
    int32_t *row = row_of(h, L, c);
    if (!row) return -1;
    const int k = L->cmap[c][b];
    if (row[k] != UNKNOWN) return row[k];
    int32_t n = L->len[c];
    int32_t moved_small[64], *moved = n <= 64 ? moved_small : malloc((size_t)n * 4);
    if (!moved) return -1;
    int32_t m = 0;
    for (int32_t i = 0; i < n; i++) {
        int32_t s = L->pool[L->off[c] + i];
        if (s <= S_EXIT) continue;
        int32_t top = h->sstate[s];
        if (ensure_dfa(h, top)) { if (moved != moved_small) free(moved); return -1; }
        int32_t d = dfa_step(h, top, b);
        if (d == T_UNKNOWN) { if (moved != moved_small) free(moved); return -1; }
        if (d == DEAD) continue;
        int32_t x = gs_push(h, h->sparent[s], d);  /* same depth: nothing to truncate */
        if (x < 0) { if (moved != moved_small) free(moved); return -1; }
        moved[m++] = x;
    }
    int32_t nid = m ? closure_union(h, L, moved, m) : 0;
    if (moved != moved_small) free(moved);
    if (nid < 0) return -1;
    row[k] = nid;  /* (the row never moves: the level's arrays of pointers may have) */
    if (nid == c) {  /* b's class (the bytes between the two cuts around it) loops */
        const uint64_t *cut = L->ccut + (int64_t)c * 4;
        set_range(L->selfloop + (int64_t)c * 4, bit_at_or_below(cut, b), bit_above(cut, b) - 1);
    }
    return nid;
}

/* ---------------------------------------------------------------- API */

void gs_core_free(Core *h);

static int64_t live_cores;  /* cores made and not yet freed (tests read it: gs_live_cores) */
int64_t gs_live_cores(void) { return __atomic_load_n(&live_cores, __ATOMIC_RELAXED); }

/* A grammar's automaton over the given NFA (n states; per state, CSR offsets into the byte
   edges (lo, hi, target), epsilon targets and calls (rule, return state); final flags) and
   vocabulary trie.  Every array must outlive the core.  NULL when out of memory. */
Core *gs_core_new(int64_t nfa_n, const int32_t *eb_off, const int32_t *eb, const int32_t *eps_off,
                  const int32_t *eps, const int32_t *nc_off, const int32_t *nc, const uint8_t *nfa_final,
                  int32_t n_rules, const int32_t *rule_start, const Node *node,
                  const uint64_t *pre_sub, const int32_t *tok,
                  const int32_t *tok_len, const int32_t *pre_parent,
                  const int32_t *tok_node, const uint8_t *tok_bytes, const int64_t *tok_off,
                  const int32_t *big_slot, const uint32_t *big_words, const uint64_t *big_lens,
                  const uint64_t *plain_set, const uint8_t *plain_flags, const int32_t *plain_next, const uint32_t *plain_le, const uint8_t *plain_any,
                  int32_t plain_max, int64_t vocab_size, int64_t n_nodes, int32_t max_depth) {
    Core *h = calloc(1, sizeof(Core));
    if (!h) return NULL;
    h->nfa_n = nfa_n; h->eb_off = eb_off; h->eb = eb; h->eps_off = eps_off; h->eps = eps;
    h->nc_off = nc_off; h->nc = nc; h->nfa_final = nfa_final;
    h->nstamp = calloc((size_t)(nfa_n ? nfa_n : 1), 4);
    h->nstable = calloc((size_t)(nfa_n ? nfa_n : 1), 1);
    h->n_rules = n_rules;
    h->starts = malloc((size_t)(n_rules ? n_rules : 1) * 4);
    h->node = node; h->pre_sub = pre_sub;
    h->tok = tok; h->n_nodes = n_nodes;
    for (int b = 0, i = 1; b <= 256; b++) {  /* the root's children, in byte order */
        while (i < n_nodes && node[i].byte < b) i += node[i].size;
        h->root_from[b] = (int32_t)(i < n_nodes ? i : n_nodes);
    }
    h->tok_len = tok_len;
    h->pre_parent = pre_parent; h->tok_node = tok_node; h->vocab_size = vocab_size;
    h->words = (vocab_size + 31) / 32;
    h->tok_bytes = tok_bytes; h->tok_off = tok_off;
    h->big_slot = big_slot; h->big_words = big_words; h->big_lens = big_lens;
    h->plain_set = plain_set; h->plain_flags = plain_flags; h->plain_next = plain_next; h->plain_le = plain_le; h->plain_any = plain_any; h->plain_max = plain_max;
    h->pchain = malloc((size_t)(plain_max + 1) * 4);
    h->pflag = malloc((size_t)(plain_max + 1));
    h->need = calloc((size_t)(n_nodes ? n_nodes : 1), 4);
    h->sdep = calloc((size_t)(h->words ? h->words : 1), 4);  /* all zero between scans */
    h->chain = malloc((size_t)(max_depth + 2) * 4);
    h->fchain = malloc((size_t)(max_depth + 2));
    h->relmet = calloc((size_t)(max_depth + 2), 1);
    h->dst = malloc((size_t)(max_depth + 2) * 4);
    h->dfl = malloc((size_t)(max_depth + 2));
    h->drow = malloc((size_t)(max_depth + 2) * sizeof(int32_t *));
    h->dmap = malloc((size_t)(max_depth + 2) * sizeof(uint8_t *));
    int ok = h->nstamp && h->nstable && h->sdep && h->starts && h->pchain && h->pflag && h->dst && h->dfl && h->drow && h->dmap && h->need && h->chain && h->fchain && h->relmet && stack_new(h, -1, -1, 0) == S_END && stack_new(h, -1, -1, 0) == S_EXIT
             && !rehash_stacks(h) && !grow((void **)&h->nbuf, &h->nbuf_cap, 1, 4);
    for (int32_t r = 0; ok && r < n_rules; r++) {
        h->nbuf[0] = rule_start[r];
        ok = (h->starts[r] = dfa_intern_closure(h, 1)) >= 0;
    }
    __atomic_add_fetch(&live_cores, 1, __ATOMIC_RELAXED);
    if (!ok) { gs_core_free(h); return NULL; }
    return h;
}

void gs_core_free(Core *h) {
    if (!h) return;
    __atomic_sub_fetch(&live_cores, 1, __ATOMIC_RELAXED);
    for (int i = 0; i < h->nlv; i++) {
        Level *L = &h->lv[i];
        for (int64_t c = 0; c < L->n; c++) {
            mask_drop(L->macc[c], h->words);  /* (the rows go with the arena) */
            mask_drop(L->mdep[c], h->words);
            free(L->msucc[c]);
        }
        free(L->macc); free(L->mdep); free(L->msucc); free(L->nsucc); free(L->many);
        free(L->off); free(L->len); free(L->pool); free(L->rows); free(L->cmap); free(L->has_exit);
        free(L->has_end); free(L->selfloop); free(L->htab); free(L->cl_off); free(L->cl_len); free(L->cl_cfg);
        free(L->cl_pool); free(L->trunc); free(L->seen); free(L->ccut); free(L->keep); free(L->kany); free(L->uni); free(L->uni_t);
        free(L->pclosed); free(L->sexact);
    }
    free(h->nstamp); free(h->nbuf); free(h->dset_off); free(h->dset_len); free(h->dset_pool); free(h->dtab);
    free(h->pairs);
    free(h->ready); free(h->final); free(h->has_bytes); free(h->ploop); free(h->nstable); free(h->imap); free(h->islot); free(h->iset); free(h->ieoff); free(h->icand); free(h->iedge); free(h->iclos); free(h->dcut); free(h->dkeep); free(h->nloop); free(h->nloop_pop); free(h->dkeep_pop); free(h->lstamp); free(h->lbuf); free(h->lbuf2);
    free_chain(h->arena);  /* every table row: configurations' and DFA states' */
    free(h->trans); free(h->tmap); free(h->call_off);
    free(h->call_n); free(h->calls); free(h->starts); free(h->sparent); free(h->sstate);
    free(h->sdepth); free(h->stamp_cl); free(h->stamp_un); free(h->shtab); free(h->buf);
    for (int64_t i = 0; i < h->smask_cap; i++) if (h->smask_own[i]) mask_drop(h->smask[i], h->words);
    free(h->smask); free(h->smask_own); free(h->sdep);
    free(h->todo); free(h->dst); free(h->dfl); free(h->drow); free(h->dmap);
    for (int64_t i = 0; i < h->n_cmaps; i++) free(h->cmaps[i]);
    free(h->cmaps); free(h->cmap_tab); free(h->need); free(h->chain); free(h->fchain); free(h->relmet); free(h->succ);
    free(h->pchain); free(h->pflag); free(h->pq);
    free(h);
}

/* the rule DFA for Python (nfa.RuleDfa's interface, see pda_native.NativeDfa) */
int32_t gs_dfa_start(Core *h, int32_t r) { return h->starts[r]; }

int32_t gs_dfa_set_len(Core *h, int32_t d) { return h->dset_len[d]; }
void gs_dfa_set(Core *h, int32_t d, int32_t *out) {
    memcpy(out, h->dset_pool + h->dset_off[d], (size_t)h->dset_len[d] * 4);
}

/* a new level keeping k frames (0: all); its config 0 is the dead configuration */
int32_t gs_level_new(Core *h, int32_t k) {
    if (h->nlv == MAX_LEVELS) return -1;
    Level *L = &h->lv[h->nlv];
    memset(L, 0, sizeof(Level));
    L->k = k;
    if (intern_sorted(L, NULL, 0) != 0) return -1;
    return h->nlv++;
}

int64_t gs_num_configs(Core *h, int32_t lv) { return h->lv[lv].n; }
int32_t gs_has_exit(Core *h, int32_t lv, int32_t c) { return h->lv[lv].has_exit[c]; }
int32_t gs_has_end(Core *h, int32_t lv, int32_t c) { return h->lv[lv].has_end[c]; }

/* the frames of stack s bottom first into out[0..depth); returns 2 * depth + (s sits on EXIT) */
int64_t gs_stack_frames(Core *h, int32_t s, int32_t *out) {
    int32_t d = h->sdepth[s], x = s;
    for (int32_t i = d - 1; i >= 0; i--) { out[i] = h->sstate[x]; x = h->sparent[x]; }
    return 2 * (int64_t)d + (x == S_EXIT);
}

int32_t gs_stack_depth(Core *h, int32_t s) { return h->sdepth[s]; }

/* the stacks of configuration c into out (sized by the caller from gs_config_len) */
int32_t gs_config_len(Core *h, int32_t lv, int32_t c) { return h->lv[lv].len[c]; }
void gs_config_stacks(Core *h, int32_t lv, int32_t c, int32_t *out) {
    Level *L = &h->lv[lv];
    memcpy(out, L->pool + L->off[c], (size_t)L->len[c] * 4);
}

/* intern the configuration made of the given stacks (as they are: closed already) */
int32_t gs_config_intern(Core *h, int32_t lv, const int32_t *ids, int32_t n) {
    if (grow((void **)&h->buf, &h->buf_cap, n, 4)) return -1;
    memcpy(h->buf, ids, (size_t)n * 4);
    return intern_ids(h, &h->lv[lv], h->buf, n);
}

/* the closure of the given stacks, interned */
int32_t gs_config_closure(Core *h, int32_t lv, const int32_t *ids, int32_t n) {
    int32_t *copy = malloc((size_t)(n ? n : 1) * 4);
    if (!copy) return -1;
    memcpy(copy, ids, (size_t)n * 4);
    int32_t r = closure_union(h, &h->lv[lv], copy, n);
    free(copy);
    return r;
}

/* the configuration {s cut to the level's k frames} (no closure: s is closed already) */
int32_t gs_single(Core *h, int32_t lv, int32_t s) {
    Level *L = &h->lv[lv];
    int32_t t = truncate(h, L, s);
    if (t < 0) return -1;
    return intern_sorted(L, &t, 1);
}


/* the configuration after data[0..n) from c (0: the output left the language; -1: error) */
int32_t gs_step_bytes(Core *h, int32_t lv, int32_t c, const uint8_t *data, int64_t n) {
    Level *L = &h->lv[lv];
    for (int64_t i = 0; i < n && c > 0; i++) {
        const int32_t *row = L->rows[c];
        const int32_t x = row ? row[L->cmap[c][data[i]]] : UNKNOWN;
        c = x != UNKNOWN ? x : cell(h, L, c, data[i]);
    }
    return c;
}

static inline int skippable(const uint64_t *selfloop, const uint64_t *sb, int32_t ns) {
    const uint64_t *sl = selfloop + (int64_t)ns * 4;
    if (!(sl[0] | sl[1] | sl[2] | sl[3])) return 0;  /* loops on no byte (the usual case): the
                                                         subtree's byte set need not be read */
    return subset4(sb, sl);
}

static inline void set_bits(uint32_t *bits, const int32_t *ids, int64_t lo, int64_t hi) {
    for (int64_t j = lo; j < hi; j++) bits[ids[j] >> 5] |= 1u << (ids[j] & 31);
}

/* mask words four at a time (GCC / Clang vector extensions: SSE2 or NEON; -O2 alone does not
   vectorize these loops) */
typedef uint32_t v4u __attribute__((vector_size(16)));

static inline void or_words(uint32_t *dst, const uint32_t *src, int64_t n) {
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        v4u a, b;
        memcpy(&a, dst + i, 16);
        memcpy(&b, src + i, 16);
        a |= b;
        memcpy(dst + i, &a, 16);
    }
    for (; i < n; i++) dst[i] |= src[i];
}

/* dst |= hi & ~lo, word by word */
static inline void or_andnot_words(uint32_t *dst, const uint32_t *hi, const uint32_t *lo, int64_t n) {
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        v4u a, b, c;
        memcpy(&a, dst + i, 16);
        memcpy(&b, hi + i, 16);
        memcpy(&c, lo + i, 16);
        a |= b & ~c;
        memcpy(dst + i, &a, 16);
    }
    for (; i < n; i++) dst[i] |= hi[i] & ~lo[i];
}

/* live configuration ns ends some token of the current walk: a successor (listed once) */
static inline int add_successor(Core *h, Level *L, int32_t ns) {
    if (L->seen[ns] == L->seen_epoch) return 0;
    L->seen[ns] = L->seen_epoch;
    if (grow((void **)&h->succ, &h->succ_cap, h->succ_n + 1, 4)) return -1;
    h->succ[h->succ_n++] = ns;
    return 0;
}

/* the verdict of the tokens tok[a .. b), which end in configuration ns with flag f; `w`: those
   tokens as mask words when precomputed (a big subtree, vocab.py: big_below_words), or NULL */
static inline int verdict(Core *h, Level *L, int32_t ns, uint8_t f, int64_t a, int64_t b,
                          const uint32_t *w, uint32_t *acc, uint32_t *dep, int32_t *ends) {
    if (a == b) return 0;
    if (ns > 0) {
        if (add_successor(h, L, ns)) return -1;
        if (acc) { if (w) or_words(acc, w, h->words); else set_bits(acc, h->tok, a, b); }
        if (ends) for (int64_t j = a; j < b; j++) ends[h->tok[j]] = ns;
        return 0;
    }
    if (!f) return 0;
    if (dep) { if (w) or_words(dep, w, h->words); else set_bits(dep, h->tok, a, b); }
    return 1;
}

/* the precomputed words of the tokens strictly below node r, or NULL */
static inline const uint32_t *below_words(const Core *h, int64_t r) {
    const int32_t slot = h->big_slot[r];
    return slot < 0 ? NULL : h->big_words + (int64_t)slot * h->words;
}

#define CHAIN_MIN_NODES 48  /* subtrees smaller than this are walked, not chained */

/* the one configuration that every byte in the set sb leads c to (computing the cells it needs,
   one per byte class met), -2 if they differ, -1 on error */
static int32_t uniform_target(Core *h, Level *L, int32_t c, const uint64_t *sb) {
    uint64_t *u = L->uni + (int64_t)c * 4;
    if (L->uni_t[c] != -3 && subset4(sb, u))
        return L->uni_t[c];  /* every byte of sb is known to lead there */
    if (!row_of(h, L, c)) return -1;
    int32_t t = -3;
    /* one check per byte class of c that meets sb: b is the first byte of sb in its class (the
       cuts are read again each step: cell() may have moved the level's arrays) */
    for (int b = first_byte(sb); b < 256; b = next_class_byte(sb, L->ccut + (int64_t)c * 4, b)) {
        int32_t v = L->rows[c][L->cmap[c][b]];
        if (v == UNKNOWN && (v = cell(h, L, c, b)) < 0) return -1;
        if (t == -3) t = v;
        else if (v != t) return -2;
    }
    if (t >= 0 && (L->uni_t[c] == -3 || L->uni_t[c] == t)) {  /* remember: sb's bytes lead to t */
        u = L->uni + (int64_t)c * 4;  /* (cell() may have moved the level's arrays) */
        L->uni_t[c] = t;
        for (int w = 0; w < 4; w++) u[w] |= sb[w];
    }
    return t;
}

/* Chain skip: when every byte below node r leads each state met to one same next state (a
   counted string's interior: every character moves a counter), the tokens below r end in
   chain[j] at relative depth j, with flag fchain[j].  Returns 1 with chain/fchain filled for
   j = 0 .. height, 0 if the subtree is not uniform, -1 on error. */
static int build_chain(Core *h, Level *L, int64_t r, int32_t ns, uint8_t f) {
    const uint64_t *sb = h->pre_sub + r * 4;
    const int32_t height = h->node[r].height;
    h->chain[0] = ns;
    h->fchain[0] = f;
    for (int32_t j = 1; j <= height; j++) {
        const int32_t c = h->chain[j - 1];
        h->fchain[j] = h->fchain[j - 1] | L->has_exit[c];
        if (c == 0) { h->chain[j] = 0; continue; }  /* dead stays dead */
        const int32_t t = uniform_target(h, L, c, sb);
        if (t == -1) return -1;
        if (t == -2) return 0;
        h->chain[j] = t;
    }
    return 1;
}

/* the verdicts of the tokens tok[a .. b) below chained node r at depth d0 */
static int chain_verdicts(Core *h, Level *L, int64_t r, int32_t d0, int64_t a, int64_t b, uint32_t *acc,
                          uint32_t *dep, int32_t *ends) {
    int any = 0;
    const int32_t height = h->node[r].height;
    const uint32_t *w = below_words(h, r);
    uint8_t *met = h->relmet;  /* the lengths (relative to d0) of the accepted tokens: each one's
                                  end configuration is a successor, added once after the loop */
    int some = 0;  /* some length below is accepted or context-dependent */
    for (int32_t j = 1; !some && j <= height; j++) some = h->chain[j] > 0 || h->fchain[j];
    if (!some) return 0;  /* every token below is rejected (a space's subtree when only a digit
                             may follow): nothing to read, thousands of tokens skipped */
    int all_live = w && !ends;
    for (int32_t j = 1; all_live && j <= height; j++) all_live = h->chain[j] > 0;
    if (all_live) {  /* every token below is accepted: the precomputed words */
        if (h->big_lens) {  /* and lengths */
            const uint64_t *lens = h->big_lens + (int64_t)h->big_slot[r] * 4;
            for (int q = 0; q < 4; q++)
                for (uint64_t x = lens[q]; x; x &= x - 1) met[64 * q + __builtin_ctzll(x) - d0] = 1;
        } else {
            for (int64_t j = a; j < b; j++) met[h->tok_len[j] - d0] = 1;
        }
        if (acc) or_words(acc, w, h->words);
    } else {
        for (int64_t j = a; j < b; j++) {
            const int32_t rel = h->tok_len[j] - d0, st = h->chain[rel];
            if (st > 0) {
                met[rel] = 1;
                if (acc) acc[h->tok[j] >> 5] |= 1u << (h->tok[j] & 31);
                if (ends) ends[h->tok[j]] = st;
            } else if (h->fchain[rel]) {
                if (dep) dep[h->tok[j] >> 5] |= 1u << (h->tok[j] & 31);
                any = 1;
            }
        }
    }
    for (int32_t rel = 0; rel <= height; rel++) {
        if (!met[rel]) continue;
        met[rel] = 0;
        if (add_successor(h, L, h->chain[rel])) return -1;
    }
    return any;
}

/* Plain chain: when every plain byte (vocab.py: PLAIN_BYTES) leads each configuration met from
   cid to one same next one (a string's interior, counted or not), every plain token of length l
   ends in pchain[l] with flag pflag[l], for l = 1 .. plain_max.  Returns 1 with pchain / pflag
   filled, 0 when some configuration steps two plain bytes apart, -1 on error. */
static int plain_chain(Core *h, Level *L, int32_t cid) {
    h->pchain[0] = cid;
    h->pflag[0] = 0;
    for (int32_t l = 1; l <= h->plain_max; l++) {
        const int32_t c = h->pchain[l - 1];
        h->pflag[l] = h->pflag[l - 1] | L->has_exit[c];
        if (c == 0) { h->pchain[l] = 0; continue; }  /* dead stays dead */
        if (l >= 2 && c == h->pchain[l - 2]) { h->pchain[l] = c; continue; }  /* a loop: c -> c */
        const int32_t t = uniform_target(h, L, c, h->plain_set);
        if (t < 0) return t == -1 ? -1 : 0;
        h->pchain[l] = t;
    }
    return 1;
}

#define IMMORTAL_MAX 1024  /* NFA states one immortality search explores at most */
#define IMAP (4 * IMMORTAL_MAX)  /* its hash map's slots (a power of two) */

/* the local index of NFA state x in the search's hash map, or -1 (*slot: where it goes) */
static int32_t imm_find(const Core *h, int32_t x, uint32_t *slot) {
    uint32_t j = (uint32_t)(mix((uint64_t)x) & (IMAP - 1));
    for (;; j = (j + 1) & (IMAP - 1)) {
        const int32_t i = h->imap[j];
        if (i < 0) { *slot = j; return -1; }
        if (h->iset[i] == x) return i;
    }
}

/* Whether NFA state x is plain-immortal: a stack whose top dstate holds x stays live whatever
   plain string (vocab.py: PLAIN_BYTES) it reads.  The greatest set I of NFA states such that
   every state of I has, on every plain byte b, a successor in I: a byte edge on b from its
   epsilon closure, or a call from it to a rule whose start dstate steps b to a final one (b read
   whole) with its return state.  A top dstate holding a state of I steps on b to one holding its
   successor (dstates are epsilon-closed; a call read whole pops back to the return dstate, which
   holds the return state), so no plain string kills that stack.  Other ways to survive (a call
   that reads more than one byte, popping the frame) are not counted: a no can be a missed yes,
   a yes is always right.  Examples: the loop of `.*` (one state), the complement of a trie of
   key names (every node steps each byte to a child or to the `.*` loop).
   Explores the states that plain bytes reach from x, breadth-first, up to IMMORTAL_MAX (then
   no), and keeps the verdict of every state explored (nstable: 0 unknown, 1 yes, 2 no), so each
   NFA state is explored once.  1 yes, 0 no, -1 on error. */
static int nfa_immortal(Core *h, int32_t x) {
    if (h->nstable[x]) return h->nstable[x] == 1;
    if (!h->imap) {
        h->imap = malloc((size_t)IMAP * 4);
        h->iset = malloc((size_t)IMMORTAL_MAX * 4);
        h->ieoff = malloc((size_t)(IMMORTAL_MAX + 1) * 8);
        h->icand = malloc((size_t)IMMORTAL_MAX);
        h->islot = malloc((size_t)IMMORTAL_MAX * 4);
        if (!h->imap || !h->iset || !h->ieoff || !h->icand || !h->islot) return -1;
        memset(h->imap, 0xff, (size_t)IMAP * 4);
        h->imap_n = 0;
    }
    for (int32_t i = 0; i < h->imap_n; i++) h->imap[h->islot[i]] = -1;  /* the last search's */
    h->imap_n = 0;
    const uint64_t *plain = h->plain_set;
    int32_t n = 0;
    int64_t ne = 0;
    uint32_t slot = 0;
    imm_find(h, x, &slot);
    h->imap[slot] = 0;
    h->islot[n] = slot;
    h->iset[n++] = x;
    h->imap_n = n;
    int ok = 1;
    for (int32_t i = 0; i < n && ok; i++) {
        const int32_t y = h->iset[i];
        h->ieoff[i] = ne;
        if (i > 0 && h->nstable[y]) continue;  /* known already: not explored again */
        /* y's epsilon closure (in its own buffer: dfa_step below may reuse nbuf), then its byte edges
           that meet the plain bytes and its calls read whole on a plain byte, as edges
           (lo, hi, target) */
        if (grow((void **)&h->iclos, &h->iclos_cap, 1, 4)) return -1;
        h->iclos[0] = y;
        const int64_t k = eps_closure(h, &h->iclos, &h->iclos_cap, 1);
        if (k < 0) return -1;
        for (int64_t c = 0; c < k; c++) {
            const int32_t z = h->iclos[c];
            for (int32_t e = h->eb_off[z]; e < h->eb_off[z + 1]; e++) {
                const int32_t lo = h->eb[3 * e], hi = h->eb[3 * e + 1], t = h->eb[3 * e + 2];
                uint64_t rg[4] = {0, 0, 0, 0};
                set_range(rg, lo, hi);
                if (!((rg[0] & plain[0]) | (rg[1] & plain[1]) | (rg[2] & plain[2]) | (rg[3] & plain[3]))) continue;
                if (grow((void **)&h->iedge, &h->iedge_cap, 3 * (ne + 1), 4)) return -1;
                h->iedge[3 * ne] = lo; h->iedge[3 * ne + 1] = hi; h->iedge[3 * ne + 2] = t;
                ne++;
            }
            for (int32_t e = h->nc_off[z]; e < h->nc_off[z + 1]; e++) {  /* one edge per class */
                const int32_t st = h->starts[h->nc[2 * e]], ret = h->nc[2 * e + 1];
                if (ensure_dfa(h, st)) return -1;
                for (int bb = first_byte(plain); bb < 256; bb = next_class_byte(plain, h->dcut + (int64_t)st * 4, bb)) {
                    const int32_t u = dfa_step(h, st, bb);
                    if (u == T_UNKNOWN || (u != DEAD && ensure_dfa(h, u))) return -1;
                    if (u == DEAD || !h->final[u]) continue;  /* (final: set by ensure_dfa) */
                    if (grow((void **)&h->iedge, &h->iedge_cap, 3 * (ne + 1), 4)) return -1;
                    h->iedge[3 * ne] = bb; h->iedge[3 * ne + 1] = bit_above(h->dcut + (int64_t)st * 4, bb) - 1;
                    h->iedge[3 * ne + 2] = ret;
                    ne++;
                }
            }
        }
        /* a state without a successor on some plain byte is no candidate (the fixpoint below
           would drop it first): its successors are not explored for it (most states of a
           keyword or a punctuation: the search stays near x instead of crossing the grammar) */
        uint64_t cov[4] = {0, 0, 0, 0};
        for (int64_t e = h->ieoff[i]; e < ne; e++) set_range(cov, h->iedge[3 * e], h->iedge[3 * e + 1]);
        h->icand[i] = (uint8_t)subset4(plain, cov);
        if (!h->icand[i]) {
            if (i == 0) break;
            continue;
        }
        for (int64_t e = h->ieoff[i]; e < ne && ok; e++) {  /* new targets join the search */
            const int32_t t = h->iedge[3 * e + 2];
            if (imm_find(h, t, &slot) >= 0) continue;
            if (n == IMMORTAL_MAX) { ok = 0; break; }
            h->imap[slot] = n;
            h->islot[n] = slot;
            h->iset[n++] = t;
            h->imap_n = n;
        }
    }
    if (!ok) {  /* too big: no, for every state met (a cautious verdict: each is not explored again) */
        for (int32_t i = 0; i < n; i++) if (!h->nstable[h->iset[i]]) h->nstable[h->iset[i]] = 2;
        return 0;
    }
    h->ieoff[n] = ne;
    if (!h->icand[0]) {  /* x itself misses a plain byte */
        h->nstable[x] = 2;
        return 0;
    }
    /* the greatest fixpoint: drop a candidate with a plain byte that no candidate follows */
    for (int32_t i = 1; i < n; i++) {
        const uint8_t k = h->nstable[h->iset[i]];
        if (k) h->icand[i] = k == 1;  /* states known before keep their verdict (the others: their
                                         own cover, set by the search) */
    }
    for (int changed = 1; changed;) {
        changed = 0;
        for (int32_t i = 0; i < n; i++) {
            if (!h->icand[i] || (i > 0 && h->nstable[h->iset[i]])) continue;
            uint64_t cov[4] = {0, 0, 0, 0};
            for (int64_t e = h->ieoff[i]; e < h->ieoff[i + 1]; e++) {
                const int32_t t = imm_find(h, h->iedge[3 * e + 2], &slot);
                if (!h->icand[t]) continue;
                set_range(cov, h->iedge[3 * e], h->iedge[3 * e + 1]);
            }
            if (!subset4(plain, cov)) { h->icand[i] = 0; changed = 1; }
        }
    }
    for (int32_t i = 0; i < n; i++) if (i == 0 || !h->nstable[h->iset[i]]) h->nstable[h->iset[i]] = h->icand[i] ? 1 : 2;
    return h->icand[0];
}

#define STABLE_TRIES 4096  /* NFA states of a dstate tried at most (each is explored once per
                              grammar: see nfa_immortal) */

/* Whether a stack whose top is dstate d survives every plain string: one of d's NFA states is
   plain-immortal (nfa_immortal).  Memoized per dstate; 1 yes, 0 no, -1 on error. */
static int plain_stable(Core *h, int32_t d) {
    if (h->ploop[d]) return h->ploop[d] == 1;
    int ok = 0;
    const int32_t n = h->dset_len[d] < STABLE_TRIES ? h->dset_len[d] : STABLE_TRIES;
    for (int32_t i = 0; i < n && !ok; i++) {
        const int r = nfa_immortal(h, h->dset_pool[h->dset_off[d] + i]);
        if (r < 0) return -1;
        ok = r;
    }
    h->ploop[d] = ok ? 1 : 2;
    return ok;
}

#define PLAIN_CLOSED_MAX 16  /* configurations plain_closed explores at most */
#define PLAIN_CLOSED_NFA 48   /* NFA states in the top frames of each one at most (a cell's cost
                                 grows with them: a big alternation's are not worth exploring) */

/* Whether every configuration that plain bytes lead cid to (cid itself included) is live: then
   every plain token is accepted from cid, whatever configuration it ends in (an unanchored
   pattern inside a string: the bytes move the match along, none can fail).  1 yes, 0 no (or more
   than PLAIN_CLOSED_MAX configurations, or one too big), -1 on error.  At once yes when a stack
   survives every plain string (see plain_stable).  Explores breadth-first, one cell per byte
   class met.  Memoized for every configuration explored: a yes holds for each of them; a no is
   kept for each too (for cid's successors a cautious one: they only lose the shortcut), so a
   configuration is explored by at most one search that fails, and later searches stop there. */
static int plain_closed(Core *h, Level *L, int32_t cid) {
    if (L->pclosed[cid] == 1 || L->pclosed[cid] == 2) return L->pclosed[cid] == 1;
    for (int32_t q = 0; q < L->len[cid]; q++) {  /* a stack that plain bytes cannot kill */
        const int32_t st = L->pool[L->off[cid] + q];
        if (st <= S_EXIT) continue;
        const int stable = plain_stable(h, h->sstate[st]);
        if (stable < 0) return -1;
        if (stable) { L->pclosed[cid] = 1; return 1; }
    }
    const uint64_t *sb = h->plain_set;
    int64_t n = 0, i = 0;
    int ok = 1;
    if (grow((void **)&h->pq, &h->pq_cap, 1, 4)) return -1;
    h->pq[n++] = cid;
    L->pclosed[cid] = 3;
    while (i < n && ok) {
        const int32_t c = h->pq[i++];
        if (!row_of(h, L, c)) return -1;
        int64_t size = 0;
        for (int32_t q = 0; q < L->len[c]; q++) {
            const int32_t st = L->pool[L->off[c] + q];
            if (st > S_EXIT) size += h->dset_len[h->sstate[st]];
        }
        if (size > PLAIN_CLOSED_NFA) { ok = 0; break; }
        /* one byte per byte class of c that meets the plain bytes (see uniform_target) */
        for (int b = first_byte(sb); b < 256; b = next_class_byte(sb, L->ccut + (int64_t)c * 4, b)) {
            int32_t t = L->rows[c][L->cmap[c][b]];
            if (t == UNKNOWN && (t = cell(h, L, c, b)) < 0) return -1;
            const uint8_t m = L->pclosed[t];  /* (cell() may have moved the level's arrays) */
            if (m == 2) { ok = 0; break; }  /* dead, or known to reach a dead one */
            if (m == 0) {
                if (n == PLAIN_CLOSED_MAX || grow((void **)&h->pq, &h->pq_cap, n + 1, 4)) { ok = 0; break; }
                h->pq[n++] = t;
                L->pclosed[t] = 3;
            }
        }
    }
    for (int64_t j = 0; j < n; j++) L->pclosed[h->pq[j]] = ok ? 1 : 2;
    return ok;
}

/* the verdict of a plain length: 1 accepted (live end), 2 context-dependent, 0 rejected */
static inline int plain_kind(const Core *h, int32_t l) {
    return h->pchain[l] > 0 ? 1 : h->pflag[l] ? 2 : 0;
}

/* the verdicts of the plain tokens from the chain: each run of lengths with one verdict is one
   pass over the words (plain_le: tokens up to a length), each live end a successor.  Returns
   whether some plain token is context-dependent, or -1 on error. */
static int plain_verdicts(Core *h, Level *L, uint32_t *acc, uint32_t *dep) {
    const int64_t W = h->words;
    int any = 0;
    for (int32_t l = 1, e; l <= h->plain_max; l = e + 1) {
        const int kind = plain_kind(h, l);
        e = l;
        while (e < h->plain_max && plain_kind(h, e + 1) == kind) e++;
        int some = 0;  /* a plain token has a length in l .. e */
        for (int32_t j = l; j <= e; j++) {
            if (!h->plain_any[j]) continue;
            some = 1;
            if (kind == 1 && add_successor(h, L, h->pchain[j])) return -1;
        }
        uint32_t *dst = kind == 1 ? acc : kind == 2 ? dep : NULL;
        if (!some || !dst) { any |= some && kind == 2; continue; }
        any |= kind == 2;
        const uint32_t *hi = h->plain_le + (int64_t)e * W, *lo = h->plain_le + (int64_t)(l - 1) * W;
        or_andnot_words(dst, hi, lo, W);
    }
    return any;
}

/* The keep skip of gs_scan: when every byte below trie node r (in live configuration ns) is in
   ns's keep set (config_keep), every token below r is accepted, wherever it ends (so the walk's
   successors are partial).  1 when it applies (acc written), 0 when not, -1 on error.  Kept out of
   the walk's loop: inlined, it cost the loop registers and 10% more instructions on JSON. */
static __attribute__((noinline)) int keep_skip(Core *h, Level *L, int64_t r, int32_t ns, uint32_t *acc) {
    const int k = L->kany[ns] ? L->kany[ns] : config_keep(h, L, ns);
    if (k != 2) return k < 0 ? -1 : 0;
    if (!subset4(h->pre_sub + r * 4, L->keep + (int64_t)ns * 4)) return 0;
    const int64_t a = h->node[r + 1].tlo, b = h->node[r + h->node[r].size].tlo;
    if (acc && a < b) {
        const uint32_t *w = below_words(h, r);
        if (w) or_words(acc, w, h->words); else set_bits(acc, h->tok, a, b);
    }
    h->succ_partial = 1;
    return 1;
}

/* Walk the vocabulary trie from configuration cid: one front-to-back scan of the preorder
   layout, jumping over the subtree of every node whose state is dead (and flag unset), filling
   the table cells it needs as it goes.  A node's state is T[its parent's state][its byte], its
   flag is its parent's flag | has_exit[parent's state] (a byte was read while the context was
   unknown).  The tokens a node spells are accepted when its state is live, context-dependent
   when it is dead but flagged.  A live node whose subtree's bytes all loop on its state (a
   string's interior) is not walked: every token below it ends in that state; nor is a big
   subtree whose bytes all lead each state to one same next one (see build_chain); nor, when the
   plain bytes step alike all along (see plain_chain), are the plain tokens: they are taken by
   length, and the walk skips every node whose tokens (at and below it) are all plain.  Nor when
   no plain bytes can lead to a dead end (see plain_closed): every plain token is accepted then,
   but the configurations they end in are not listed among the successors (h->succ_partial; not
   with h->no_closed set).
   Writes the accepted / dependent bits into acc / dep (zeroed by the caller; either may be NULL),
   and with `ends` (zeroed, [vocabulary size] by token id) the configuration each accepted token
   ends in.  *any_dep: some token is context-dependent.  With `only` (bit
   words by token id), the walk may stop at the subtrees that hold none of those tokens: the
   verdicts of the other tokens are then incomplete (callers AND with `only`).  Returns the number
   of distinct live end configurations (left in h->succ: gs_level_mask and gs_last_succ copy them out), or -1 on error. */
int64_t gs_scan(Core *h, int32_t lv, int32_t cid, uint32_t *acc, uint32_t *dep, int32_t *ends,
                int32_t *any_dep, const uint32_t *only) {
    Level *L = &h->lv[lv];
    const int64_t n = h->n_nodes;
    const Node *nd = h->node;
    int32_t **drow = h->drow;
    const uint8_t **dmap = h->dmap;
    if (++L->seen_epoch == 0) { memset(L->seen, 0, (size_t)L->cap * 4); L->seen_epoch = 1; }
    h->succ_n = 0;
    int dep_any = 0, v;
    if (!(drow[0] = row_of(h, L, cid))) return -1;
    dmap[0] = L->cmap[cid];
    h->dst[0] = cid;
    h->dfl[0] = L->has_exit[cid];
    const uint8_t *pf = NULL;  /* the plain tokens are decided already: skip them */
    h->succ_partial = 0;
    if (!ends && !only && h->plain_max > 0) {
        int ok = plain_chain(h, L, cid);
        if (ok < 0 || (ok && (v = plain_verdicts(h, L, acc, dep)) < 0)) return -1;
        if (ok) {
            dep_any |= v;
            pf = h->plain_flags;
        } else if (!h->no_closed) {  /* the plain bytes step apart, but maybe never to a dead end */
            if ((ok = plain_closed(h, L, cid)) < 0) return -1;
            if (ok) {
                if (acc) or_words(acc, h->plain_le + (int64_t)h->plain_max * h->words, h->words);
                pf = h->plain_flags;
                h->succ_partial = 1;
            }
        }
    }
    /* the keep skip (below) leaves out successors, and takes a subtree's plain tokens again */
    const int keep_ok = !ends && !h->no_closed && !pf;
    uint32_t ep = 0;
    if (only) {  /* mark the nodes on the paths from the root to the tokens asked about */
        if (++h->need_epoch == 0) { memset(h->need, 0, (size_t)n * 4); h->need_epoch = 1; }
        ep = h->need_epoch;
        for (int64_t w = 0; w < (h->vocab_size + 31) / 32; w++) {
            for (uint32_t x = only[w]; x; x &= x - 1) {
                for (int32_t r = h->tok_node[32 * w + __builtin_ctz(x)]; r > 0 && h->need[r] != ep; r = h->pre_parent[r])
                    h->need[r] = ep;
            }
        }
    }
    for (int64_t i = 1; i < n;) {
        const Node x = nd[i];
        __builtin_prefetch(nd + i + x.size);  /* where a skip of this subtree lands */
        if (only && h->need[i] != ep) { i += x.size; continue; }  /* none of the tokens below */
        if (pf && (pf[i] & 1)) { i = h->plain_next[i]; continue; }  /* plain tokens only: to the next
                                                                         node that is not */
        const int32_t d = x.depth;
        const uint8_t f = h->dfl[d - 1];  /* this node's flag */
        int32_t ns = drow[d - 1][dmap[d - 1][x.byte]];
        if (__builtin_expect(ns == UNKNOWN, 0) && (ns = cell(h, L, h->dst[d - 1], x.byte)) < 0) return -1;
        if (ns == 0 && !f) {  /* dead: nothing below can live */
            /* a child of the root: so are its next siblings up to the end of its byte class
               (the root's children are most of a walk's nodes, and most are dead) */
            i = d == 1 ? h->root_from[bit_above(L->ccut + (int64_t)cid * 4, x.byte)] : i + x.size;
            continue;
        }
        const int32_t t_next = nd[i + 1].tlo;
        if (x.tlo != t_next && !(pf && (pf[i] & 2))) {
            if ((v = verdict(h, L, ns, f, x.tlo, t_next, NULL, acc, dep, ends)) < 0) return -1;
            dep_any |= v;
        }
        if (x.size == 1) { i++; continue; }
        const uint8_t fc = f | L->has_exit[ns];  /* its children's flag */
        if (skippable(L->selfloop, h->pre_sub + i * 4, ns)) {
            if ((v = verdict(h, L, ns, fc, t_next, nd[i + x.size].tlo, below_words(h, i), acc, dep, ends)) < 0) return -1;
            dep_any |= v;
            i += x.size;
            continue;
        }
        if (x.size >= CHAIN_MIN_NODES && ns != 0) {
            const int ok = build_chain(h, L, i, ns, f);
            if (ok < 0) return -1;
            if (ok) {
                if ((v = chain_verdicts(h, L, i, d, t_next, nd[i + x.size].tlo, acc, dep, ends)) < 0) return -1;
                dep_any |= v;
                i += x.size;
                continue;
            }
        }
        if (keep_ok && x.size >= KEEP_MIN_NODES && ns != 0) {
            if ((v = keep_skip(h, L, i, ns, acc)) < 0) return -1;
            if (v) { i += x.size; continue; }
        }
        int32_t *row = L->rows[ns];
        if (!row && !(row = row_of(h, L, ns))) return -1;
        drow[d] = row;
        dmap[d] = L->cmap[ns];
        h->dst[d] = ns;
        h->dfl[d] = fc;
        i++;
    }
    *any_dep = dep_any;
    return h->succ_n;
}


/* ---------------------------------------------------------------- masks */

int64_t gs_num_masks(Core *h, int32_t lv) { return h->lv[lv].n_masks; }

/* the live end configurations of the last gs_scan (its return value counts them) into out */
void gs_last_succ(Core *h, int32_t *out) { memcpy(out, h->succ, (size_t)h->succ_n * 4); }

/* level lv's mask of configuration cid: one scan on first use, cached (0, or -1 on error); with
   `exact`, its successors are all listed (a scan again if the cached one left some out) */
static int level_mask(Core *h, int32_t lv, int32_t cid, int exact) {
    Level *L = &h->lv[lv];
    if (L->macc[cid] && (L->sexact[cid] || !exact)) return 0;
    const int64_t W = h->words;
    /* the scan writes the accepted words in place (a rescan for the successors finds the same
       mask: written over the cached one, which stack masks may point at) and the dependent ones
       into scratch words, copied out only when there are some (then cleared again) */
    uint32_t *acc = L->macc[cid] ? L->macc[cid] : mask_new(W);
    if (!acc) return -1;
    memset(acc, 0, (size_t)W * 4);
    int32_t any = 0;
    h->no_closed = exact;
    const int64_t n = gs_scan(h, lv, cid, acc, h->sdep, NULL, &any, NULL);
    h->no_closed = 0;
    L = &h->lv[lv];  /* (the level struct itself never moves; its arrays may have) */
    if (n < 0) {
        memset(h->sdep, 0, (size_t)W * 4);
        if (acc != L->macc[cid]) mask_drop(acc, W);
        return -1;
    }
    const uint8_t partial = (uint8_t)h->succ_partial;
    int32_t *succ = n > 0 ? malloc((size_t)n * 4) : NULL;
    uint32_t *dep = any ? (L->mdep[cid] ? L->mdep[cid] : mask_new(W)) : NULL;
    if ((n > 0 && !succ) || (any && !dep)) {
        free(succ);
        if (acc != L->macc[cid]) mask_drop(acc, W);
        if (dep != L->mdep[cid]) mask_drop(dep, W);
        if (any) memset(h->sdep, 0, (size_t)W * 4);
        return -1;
    }
    if (n > 0) memcpy(succ, h->succ, (size_t)n * 4);
    if (dep) {
        memcpy(dep, h->sdep, (size_t)W * 4);
        memset(h->sdep, 0, (size_t)W * 4);
    }
    if (!L->macc[cid]) L->n_masks++;
    free(L->msucc[cid]);
    L->macc[cid] = acc; L->mdep[cid] = dep; L->msucc[cid] = succ; L->nsucc[cid] = (int32_t)n;
    L->many[cid] = (uint8_t)any;
    L->sexact[cid] = !partial;
    return 0;
}

/* Copy level lv's (cached) mask of cid into acc / dep (words each) and its successors into succ
   (room for cap; NULL: not wanted).  Returns the number of successors | any-dependent << 40, or
   -1 on error. */
int64_t gs_level_mask(Core *h, int32_t lv, int32_t cid, uint32_t *acc, uint32_t *dep, int32_t *succ, int64_t cap) {
    if (level_mask(h, lv, cid, succ != NULL)) return -1;
    Level *L = &h->lv[lv];
    memcpy(acc, L->macc[cid], (size_t)h->words * 4);
    if (L->mdep[cid]) memcpy(dep, L->mdep[cid], (size_t)h->words * 4);
    else memset(dep, 0, (size_t)h->words * 4);
    const int64_t n = L->nsucc[cid];
    if (succ) memcpy(succ, L->msucc[cid], (size_t)(n < cap ? n : cap) * 4);
    return n | ((int64_t)L->many[cid] << 40);
}

static int any_bit(const uint32_t *w, int64_t n) {
    for (int64_t i = 0; i < n; i++) if (w[i]) return 1;
    return 0;
}

/* The tokens allowed from one full stack `sid` (a stack of a configuration of level `full`) as
   words in *res: the first level's cached mask decides most tokens (and is the answer itself,
   *owned = 0, when none is context-dependent); each deeper level (levels[1..n)) walks only the
   trie paths to the tokens still context-dependent; past the last one the few left are stepped
   exactly, byte by byte, from the lone stack (*res is then a new buffer, *owned = 1).  0, or -1
   on error. */
static int64_t stack_mask(Core *h, const int32_t *levels, int32_t n_levels, int32_t full, int32_t sid,
                          uint32_t **res, uint8_t *owned) {
    const int64_t W = h->words;
    int32_t c = gs_single(h, levels[0], sid);
    if (c < 0 || level_mask(h, levels[0], c, 0)) return -1;
    Level *L = &h->lv[levels[0]];
    *res = L->macc[c];
    *owned = 0;
    if (!L->many[c]) return 0;
    uint32_t *out = mask_new(W);
    uint32_t *pending = malloc((size_t)W * 4), *acc = malloc((size_t)W * 4), *dep = malloc((size_t)W * 4);
    int rc = -1;
    if (!out || !pending || !acc || !dep) goto done;
    memcpy(out, L->macc[c], (size_t)W * 4);
    memcpy(pending, L->mdep[c], (size_t)W * 4);
    int any = 1;
    for (int32_t li = 1; li < n_levels && any; li++) {
        /* a short stack can still be cut: a token's own pushes are truncated at k too */
        if ((c = gs_single(h, levels[li], sid)) < 0) goto done;
        memset(acc, 0, (size_t)W * 4);
        memset(dep, 0, (size_t)W * 4);
        int32_t d = 0;
        if (gs_scan(h, levels[li], c, acc, dep, NULL, &d, pending) < 0) goto done;
        for (int64_t i = 0; i < W; i++) {
            out[i] |= acc[i] & pending[i];
            pending[i] &= dep[i];
        }
        any = d && any_bit(pending, W);
    }
    if (any) {  /* deeper than the last level: the leftovers, exactly */
        const int32_t lone = gs_config_intern(h, full, &sid, 1);
        if (lone < 0) goto done;
        for (int64_t i = 0; i < W; i++) {
            for (uint32_t x = pending[i]; x; x &= x - 1) {
                const int64_t t = 32 * i + __builtin_ctz(x);
                const int32_t r = gs_step_bytes(h, full, lone, h->tok_bytes + h->tok_off[t], h->tok_off[t + 1] - h->tok_off[t]);
                if (r < 0) goto done;
                if (r > 0) out[i] |= 1u << (t & 31);
            }
        }
    }
    rc = 0;
done:
    free(pending); free(acc); free(dep);
    if (rc) mask_drop(out, W);
    else { *res = out; *owned = 1; }
    return rc;
}

#define STACK_MASKS 8192  /* stack masks kept per grammar (all dropped when full: a cheap bound) */

/* The levels stack masks go through (levels[0 .. n_levels), first to last), the level of full
   configurations and the EOS words, for gs_config_mask (the arrays must outlive the core) */
void gs_set_levels(Core *h, const int32_t *levels, int32_t n_levels, int32_t full, const uint32_t *eos) {
    h->mlevels = levels; h->n_mlevels = n_levels; h->mfull = full; h->meos = eos;
}

/* The tokens allowed from full configuration `cid` (of the level set by gs_set_levels) into out
   (words): the EOS words when it can end, | each stack's mask (stack_mask, cached per stack).
   0, or -1. */

int64_t gs_config_mask(Core *h, int32_t cid, uint32_t *out) {
    const int32_t *levels = h->mlevels, n_levels = h->n_mlevels, full = h->mfull;
    const uint32_t *eos = h->meos;
    Level *F = &h->lv[full];
    const int64_t W = h->words;
    int blank = 1;  /* out not written yet: the first mask is copied, not ORed into zeros */
    if (F->has_end[cid]) { memcpy(out, eos, (size_t)W * 4); blank = 0; }
    const int32_t n = F->len[cid];
    for (int32_t i = 0; i < n; i++) {
        const int32_t s = h->lv[full].pool[h->lv[full].off[cid] + i];
        if (s <= S_EXIT) continue;  /* END: the EOS words above */
        if (s >= h->smask_cap) {
            int64_t c0 = h->smask_cap, cap = c0;
            if (grow((void **)&h->smask, &cap, (int64_t)s + 1, sizeof(uint32_t *))) return -1;
            cap = c0;
            if (grow((void **)&h->smask_own, &cap, (int64_t)s + 1, 1)) return -1;
            memset(h->smask + c0, 0, (size_t)(cap - c0) * sizeof(uint32_t *));
            memset(h->smask_own + c0, 0, (size_t)(cap - c0));
            h->smask_cap = cap;
        }
        uint32_t *m = h->smask[s];
        if (!m) {
            if (h->n_smask >= STACK_MASKS) {
                for (int64_t j = 0; j < h->smask_cap; j++) {
                    if (h->smask_own[j]) mask_drop(h->smask[j], W);
                    h->smask[j] = NULL;
                    h->smask_own[j] = 0;
                }
                h->n_smask = 0;
            }
            uint8_t own = 0;
            if (stack_mask(h, levels, n_levels, full, s, &m, &own)) return -1;
            h->smask[s] = m;
            h->smask_own[s] = own;
            h->n_smask++;
            F = &h->lv[full];
        }
        if (blank) memcpy(out, m, (size_t)W * 4);
        else or_words(out, m, W);
        blank = 0;
    }
    if (blank) memset(out, 0, (size_t)W * 4);
    return 0;
}

/* ---------------------------------------------------------------- NFA trim */

/* live[s] = 1 when state s can reach its rule's final state (nfa.Nfa.trim's definition): a byte
   or epsilon edge to a live state, or a call edge (rule r, return t) with t and r's start both
   live.  One backward worklist pass over reversed CSR arrays: linear in states and edges (a
   13M-state schema NFA took 45 s in Python).  Returns 0, or -1 when out of memory. */
int64_t gs_nfa_live(int64_t n, const int32_t *eb_off, const int32_t *eb, const int32_t *eps_off,
                    const int32_t *eps, const int32_t *nc_off, const int32_t *nc, int32_t n_rules,
                    const int32_t *start, const int32_t *finals, int32_t n_finals, uint8_t *live) {
    const int64_t nb = eb_off[n], ne = eps_off[n], nk = nc_off[n];
    int64_t *roff = calloc((size_t)n + 2, 8), *koff = calloc((size_t)n + 2, 8), *qoff = calloc((size_t)n_rules + 2, 8);
    int32_t *rsrc = malloc((size_t)(nb + ne + 1) * 4), *ksrc = malloc((size_t)(nk + 1) * 4);
    int32_t *qsrc = malloc((size_t)(nk + 1) * 4), *qret = malloc((size_t)(nk + 1) * 4);
    int32_t *todo = malloc((size_t)(n + 1) * 4), *rule_of = malloc((size_t)(n + 1) * 4);
    int64_t rc = -1, sp = 0;
    if (!roff || !koff || !qoff || !rsrc || !ksrc || !qsrc || !qret || !todo || !rule_of) goto done;
    /* counting sorts: plain edges by target, calls by return state (ksrc: the caller, kcallee
       read back through the call's own row) and by callee rule */
    for (int64_t s = 0; s < n; s++) {
        for (int32_t e = eb_off[s]; e < eb_off[s + 1]; e++) roff[eb[3 * e + 2] + 2]++;
        for (int32_t e = eps_off[s]; e < eps_off[s + 1]; e++) roff[eps[e] + 2]++;
        for (int32_t e = nc_off[s]; e < nc_off[s + 1]; e++) { koff[nc[2 * e + 1] + 2]++; qoff[nc[2 * e] + 2]++; }
    }
    for (int64_t i = 2; i <= n + 1; i++) { roff[i] += roff[i - 1]; koff[i] += koff[i - 1]; }
    for (int64_t i = 2; i <= (int64_t)n_rules + 1; i++) qoff[i] += qoff[i - 1];
    int32_t *kcall = malloc((size_t)(nk + 1) * 4);  /* call ids by return state */
    if (!kcall) goto done;
    for (int64_t s = 0; s < n; s++) {
        for (int32_t e = eb_off[s]; e < eb_off[s + 1]; e++) rsrc[roff[eb[3 * e + 2] + 1]++] = (int32_t)s;
        for (int32_t e = eps_off[s]; e < eps_off[s + 1]; e++) rsrc[roff[eps[e] + 1]++] = (int32_t)s;
        for (int32_t e = nc_off[s]; e < nc_off[s + 1]; e++) {
            kcall[koff[nc[2 * e + 1] + 1]] = e;
            ksrc[koff[nc[2 * e + 1] + 1]++] = (int32_t)s;
            const int64_t q = qoff[nc[2 * e] + 1]++;
            qsrc[q] = (int32_t)s;
            qret[q] = nc[2 * e + 1];
        }
    }
    for (int64_t s = 0; s < n; s++) { live[s] = 0; rule_of[s] = -1; }
    for (int32_t r = 0; r < n_rules; r++) rule_of[start[r]] = r;
    for (int32_t i = 0; i < n_finals; i++) if (!live[finals[i]]) { live[finals[i]] = 1; todo[sp++] = finals[i]; }
    while (sp) {
        const int32_t t = todo[--sp];
        for (int64_t i = roff[t]; i < roff[t + 1]; i++) {
            const int32_t s = rsrc[i];
            if (!live[s]) { live[s] = 1; todo[sp++] = s; }
        }
        for (int64_t i = koff[t]; i < koff[t + 1]; i++) {  /* calls returning to t */
            const int32_t s = ksrc[i], r = nc[2 * kcall[i]];
            if (!live[s] && live[start[r]]) { live[s] = 1; todo[sp++] = s; }
        }
        const int32_t r = rule_of[t];
        if (r >= 0) {  /* t is rule r's start: the calls of r whose return state is live */
            for (int64_t i = qoff[r]; i < qoff[r + 1]; i++) {
                const int32_t s = qsrc[i];
                if (!live[s] && live[qret[i]]) { live[s] = 1; todo[sp++] = s; }
            }
        }
    }
    rc = 0;
    free(kcall);
done:
    free(roff); free(koff); free(qoff); free(rsrc); free(ksrc); free(qsrc); free(qret); free(todo); free(rule_of);
    return rc;
}

/* ---------------------------------------------------------------- NFA build */

/* The Thompson NFA of the kept rules (nfa.Nfa._builder's construction, state for state and edge
   for edge), from the flat IR code nfa._encode writes.  A node is an offset into `code`:
     NB_LIT   len, pool offset           the literal's bytes chained through len - 1 fresh states
     NB_REF   rule                       one call edge
     NB_CLASS template offset            a CharClass: template = k fresh states, empty flag,
                                         edge count, edges (src, lo, hi, dst); src -1 is s, dst -1 is e
     NB_BYTES range count, (lo, hi)...
     NB_SEQ / NB_ALT  item count, items...
     NB_REPEAT item, min, max (-1: unbounded)
     NB_AUTO  state count, start, edge count, (q, label, r)..., final count, finals...
              (automaton states renumbered by first use: the order nfa.py's `at` meets them)
   Each build between s and e appends to the three edge buffers and numbers fresh states from
   n, in the order the Python recursion does; a node met again is built again (the Python
   builder replays its first build, which is the same by construction).  Recursion depth is the
   IR's depth, which the Python passes before this one already walked recursively. */
enum { NB_LIT, NB_REF, NB_CLASS, NB_BYTES, NB_SEQ, NB_ALT, NB_REPEAT, NB_AUTO };

typedef struct {
    int32_t *a; int64_t n, cap;
} IBuf;

typedef struct {
    const int32_t *code;
    const uint8_t *pool;
    IBuf B, E, C;
    int64_t n;
    int dead, oom;
} NfaBuild;

static inline void ib_push(NfaBuild *g, IBuf *b, const int32_t *v, int k) {
    if (b->n + k > b->cap) {
        int64_t cap = b->cap ? b->cap : 1024;
        while (cap < b->n + k) cap *= 2;
        int32_t *p = realloc(b->a, (size_t)cap * 4);
        if (!p) { g->oom = 1; return; }
        b->a = p; b->cap = cap;
    }
    memcpy(b->a + b->n, v, (size_t)k * 4);
    b->n += k;
}

static inline void nb_byte(NfaBuild *g, int32_t s, int32_t lo, int32_t hi, int32_t t) {
    const int32_t v[4] = {s, lo, hi, t};
    ib_push(g, &g->B, v, 4);
}

static inline void nb_eps(NfaBuild *g, int32_t s, int32_t t) {
    const int32_t v[2] = {s, t};
    ib_push(g, &g->E, v, 2);
}

static void nb_build(NfaBuild *g, int32_t node, int32_t s, int32_t e) {
    const int32_t *x = g->code + node;
    if (g->oom) return;
    switch (x[0]) {
    case NB_LIT: {
        const int32_t k = x[1];
        const uint8_t *v = g->pool + x[2];
        if (k == 0) { nb_eps(g, s, e); return; }
        if (k == 1) { nb_byte(g, s, v[0], v[0], e); return; }
        const int32_t base = (int32_t)g->n;  /* states base .. base + k - 2, in order */
        nb_byte(g, s, v[0], v[0], base);
        for (int32_t j = 1; j < k - 1; j++) nb_byte(g, base + j - 1, v[j], v[j], base + j);
        nb_byte(g, base + k - 2, v[k - 1], v[k - 1], e);
        g->n += k - 1;
        return;
    }
    case NB_REF: {
        const int32_t v[3] = {s, x[1], e};
        ib_push(g, &g->C, v, 3);
        return;
    }
    case NB_CLASS: {
        const int32_t *t = g->code + x[1];  /* k, empty, count, (src, lo, hi, dst)... */
        const int32_t base = (int32_t)g->n;
        if (t[1]) g->dead = 1;
        for (int32_t i = 0; i < t[2]; i++) {
            const int32_t *ed = t + 3 + 4 * i;
            nb_byte(g, ed[0] < 0 ? s : base + ed[0], ed[1], ed[2], ed[3] < 0 ? e : base + ed[3]);
        }
        g->n += t[0];
        return;
    }
    case NB_BYTES:
        if (x[1] == 0) g->dead = 1;
        for (int32_t i = 0; i < x[1]; i++) nb_byte(g, s, x[2 + 2 * i], x[3 + 2 * i], e);
        return;
    case NB_SEQ: {
        const int32_t k = x[1];
        if (k == 0) { nb_eps(g, s, e); return; }
        int32_t cur = s;
        for (int32_t i = 0; i < k; i++) {
            const int32_t nxt = i == k - 1 ? e : (int32_t)g->n++;  /* made before the item's states */
            nb_build(g, x[2 + i], cur, nxt);
            cur = nxt;
        }
        return;
    }
    case NB_ALT:
        if (x[1] == 0) g->dead = 1;
        for (int32_t i = 0; i < x[1]; i++) nb_build(g, x[2 + i], s, e);
        return;
    case NB_REPEAT: {
        const int32_t item = x[1], lo = x[2], hi = x[3];
        int32_t cur = s;
        for (int32_t i = 0; i < lo; i++) {
            const int32_t nxt = (int32_t)g->n++;
            nb_build(g, item, cur, nxt);
            cur = nxt;
        }
        if (hi < 0) {  /* fresh loop head: no edge ever returns to s */
            const int32_t head = (int32_t)g->n++, tail = (int32_t)g->n++;
            nb_eps(g, cur, head);
            nb_build(g, item, head, tail);
            nb_eps(g, tail, head);
            nb_eps(g, head, e);
            return;
        }
        for (int32_t i = lo; i < hi; i++) {
            nb_eps(g, cur, e);
            const int32_t nxt = (int32_t)g->n++;
            nb_build(g, item, cur, nxt);
            cur = nxt;
        }
        nb_eps(g, cur, e);
        return;
    }
    case NB_AUTO: {
        const int32_t m = x[1], ne = x[3];
        const int32_t *edges = x + 4, *fin = x + 4 + 3 * ne;
        int32_t *at = malloc((size_t)(m + 1) * 4);
        if (!at) { g->oom = 1; return; }
        for (int32_t i = 0; i < m; i++) at[i] = -1;
#define NB_AT(q) (at[q] >= 0 ? at[q] : (at[q] = (int32_t)g->n++))
        if (fin[0] == 0) g->dead = 1;
        nb_eps(g, s, NB_AT(x[2]));
        for (int32_t i = 0; i < ne; i++) {
            const int32_t q = NB_AT(edges[3 * i]);
            const int32_t r = NB_AT(edges[3 * i + 2]);
            nb_build(g, edges[3 * i + 1], q, r);
        }
        for (int32_t i = 0; i < fin[0]; i++) nb_eps(g, NB_AT(fin[1 + i]), e);
#undef NB_AT
        free(at);
        return;
    }
    }
}

/* Builds rule i's body code[roots[i]] between states 2i and 2i + 1 (n starts at 2 * n_rules).
   Returns a handle for gs_nfa_result / gs_nfa_release, or NULL when out of memory. */
void *gs_nfa_build(const int32_t *code, const uint8_t *pool, int32_t n_rules, const int32_t *roots) {
    NfaBuild *g = calloc(1, sizeof(NfaBuild));
    if (!g) return NULL;
    g->code = code; g->pool = pool;
    g->n = 2 * (int64_t)n_rules;
    for (int32_t i = 0; i < n_rules && !g->oom; i++) nb_build(g, roots[i], 2 * i, 2 * i + 1);
    if (g->oom) {
        free(g->B.a); free(g->E.a); free(g->C.a); free(g);
        return NULL;
    }
    return g;
}

/* info = (states, byte-edge ints, epsilon ints, call ints, dead flag); the buffers' addresses
   go to bufs[0..2] (valid until gs_nfa_release). */
void gs_nfa_result(void *h, int64_t *info, int32_t **bufs) {
    NfaBuild *g = h;
    info[0] = g->n; info[1] = g->B.n; info[2] = g->E.n; info[3] = g->C.n; info[4] = g->dead;
    bufs[0] = g->B.a; bufs[1] = g->E.a; bufs[2] = g->C.a;
}

/* One buffer of edges (`width` ints, source first) as CSR: off[s] .. off[s + 1] index state s's
   edges, in creation order (a stable counting sort by source), each without its source
   (width - 1 ints) in items.  Returns -1 when out of memory. */
static int nb_csr(const IBuf *b, int width, int64_t n, int32_t *off, int32_t *items) {
    const int64_t m = b->n / width;
    int32_t *at = malloc((size_t)(n + 1) * 4);
    if (!at) return -1;
    memset(off, 0, (size_t)(n + 1) * 4);
    for (int64_t i = 0; i < m; i++) off[b->a[i * width] + 1]++;
    for (int64_t s = 0; s < n; s++) off[s + 1] += off[s];
    memcpy(at, off, (size_t)(n + 1) * 4);
    for (int64_t i = 0; i < m; i++) {
        const int32_t *ed = b->a + i * width;
        memcpy(items + (int64_t)at[ed[0]]++ * (width - 1), ed + 1, (size_t)(width - 1) * 4);
    }
    free(at);
    return 0;
}

/* The build as Nfa.arrays's CSR arrays (see nb_csr): off arrays of states + 1 ints, items of
   3 ints a byte edge (lo, hi, target), 1 an epsilon, 2 a call (rule, return).  Returns -1 when
   out of memory. */
int32_t gs_nfa_csr(void *h, int32_t *eb_off, int32_t *eb, int32_t *eps_off, int32_t *eps,
                   int32_t *nc_off, int32_t *nc) {
    NfaBuild *g = h;
    if (nb_csr(&g->B, 4, g->n, eb_off, eb) < 0 || nb_csr(&g->E, 2, g->n, eps_off, eps) < 0 ||
        nb_csr(&g->C, 3, g->n, nc_off, nc) < 0)
        return -1;
    return 0;
}

void gs_nfa_release(void *h) {
    NfaBuild *g = h;
    if (!g) return;
    free(g->B.a); free(g->E.a); free(g->C.a); free(g);
}

/* ---------------------------------------------------------------- prepare (normalize.prepare in C) */

/* normalize.prepare's passes on the flat code of the raw grammar (nfa.encode_raw: the NB_ format
   above, a CharClass record being (NB_CLASS, template, productive flag)), making the decisions
   the Python passes make, node for node: a node is an offset into the code, a node the Python
   passes make anew is appended, and the memos are by offset as Python's are by identity (the
   encoder gives two nodes one offset exactly where _resolve_shared makes them one object).
   Steps (normalize.py): productive rules (an unproductive start: status PREP_UNPRODUCTIVE),
   references to the others -> Alt(()), _inline (with _inline_cycle_members and reachability),
   _hoist_repeats, then the left-recursion check.  A grammar with a cycle in its lead graph (before
   or after the passes) gets status PREP_FALLBACK: the Python passes, which rewrite or reject left
   recursion, run instead.  The result (code, roots in the final rule order) is what gs_nfa_build
   reads.  Every walk uses an explicit stack; sizes and use counts saturate at PREP_SAT, above
   every threshold (so every comparison decides as Python's unbounded ints do). */

enum { PREP_OK = 0, PREP_FALLBACK = 1, PREP_UNPRODUCTIVE = 2, PREP_TOO_DEEP = 3 };
#define PREP_SAT ((int64_t)1 << 40)
#define PREP_INLINE_TINY 24
#define PREP_INLINE_BUDGET 3000
#define PREP_INLINE_SMALL 150
#define PREP_HOIST_LIMIT 600
#define PREP_HOIST_ITEM 8
#define PREP_MAX_DEPTH 5000  /* deepest IR gs_nfa_build's recursion may walk (~100-200 bytes of C stack a
                                 level: under 1 MB; the Python passes stop near 1000 levels) */

static inline int64_t sat_add(int64_t a, int64_t b) { return a + b >= PREP_SAT ? PREP_SAT : a + b; }
static inline int64_t sat_mul(int64_t a, int64_t b) {
    if (a == 0 || b == 0) return 0;
    return a > PREP_SAT / b ? PREP_SAT : (a * b >= PREP_SAT ? PREP_SAT : a * b);
}

typedef struct {
    int32_t *code; int64_t n, cap;      /* the code, growing (aux arrays have cap entries too) */
    const uint8_t *pool;
    /* per offset */
    int64_t *sz;                        /* size() + 0 = unknown */
    int64_t *mult;                      /* path multiplicity (use counts) */
    int32_t *stA, *valA, *stB, *valB;   /* two memos (stamp == epoch: valid) */
    int32_t *stW;                       /* walk stamps */
    int32_t *stF; uint8_t *fv;          /* fold (nullable / productive) stamps and values */
    int32_t epA, epB, epW, epF;
    /* per rule */
    int32_t nr, rcap;
    int32_t *body, *kind, *owner, *num; /* kind 0: a grammar rule, 1: owner~itemK, 2: owner~labelK */
    uint8_t *flag;                      /* per-rule scratch flags (nullable / productive) */
    int32_t *order; int32_t n_order;    /* the rules kept, in order */
    int32_t *roots;                     /* final bodies, final order */
    int32_t start;
    int status, oom;
    /* scratch */
    int32_t *stk; int64_t stk_n, stk_cap;
    int32_t *lst; int64_t lst_n, lst_cap;
} Prep;

static int prep_reserve(Prep *P, int64_t k) {
    if (P->n + k <= P->cap) return 0;
    int64_t cap = P->cap ? P->cap : 1024;
    while (cap < P->n + k) cap *= 2;
    const int64_t old = P->cap;
#define PREP_GROW(f, T) do { T *q = realloc(P->f, (size_t)cap * sizeof(T)); if (!q) { P->oom = 1; return -1; } \
        memset(q + old, 0, (size_t)(cap - old) * sizeof(T)); P->f = q; } while (0)
    PREP_GROW(code, int32_t); PREP_GROW(sz, int64_t); PREP_GROW(mult, int64_t);
    PREP_GROW(stA, int32_t); PREP_GROW(valA, int32_t); PREP_GROW(stB, int32_t); PREP_GROW(valB, int32_t);
    PREP_GROW(stW, int32_t); PREP_GROW(stF, int32_t); PREP_GROW(fv, uint8_t);
#undef PREP_GROW
    P->cap = cap;
    return 0;
}

static int prep_push(Prep *P, int32_t **a, int64_t *n, int64_t *cap, int32_t v) {
    if (*n >= *cap && grow((void **)a, cap, *n + 1, 4) < 0) { P->oom = 1; return -1; }
    (*a)[(*n)++] = v;
    return 0;
}
#define SPUSH(P, v) prep_push(P, &(P)->stk, &(P)->stk_n, &(P)->stk_cap, (v))
#define LPUSH(P, v) prep_push(P, &(P)->lst, &(P)->lst_n, &(P)->lst_cap, (v))

static int32_t prep_new_rule(Prep *P, int32_t body, int32_t kind, int32_t owner, int32_t num) {
    if (P->nr >= P->rcap) {
        int32_t cap = P->rcap ? P->rcap * 2 : 64;
#define RGROW(f, T) do { T *q = realloc(P->f, (size_t)cap * sizeof(T)); if (!q) { P->oom = 1; return -1; } P->f = q; } while (0)
        RGROW(body, int32_t); RGROW(kind, int32_t); RGROW(owner, int32_t); RGROW(num, int32_t);
        RGROW(flag, uint8_t); RGROW(order, int32_t);
#undef RGROW
        P->rcap = cap;
    }
    P->body[P->nr] = body; P->kind[P->nr] = kind; P->owner[P->nr] = owner; P->num[P->nr] = num;
    P->flag[P->nr] = 0;
    return P->nr++;
}

static inline int32_t nd_nkids(const int32_t *x) {
    switch (x[0]) {
    case NB_SEQ: case NB_ALT: return x[1];
    case NB_REPEAT: return 1;
    case NB_AUTO: return x[3];
    default: return 0;
    }
}

static inline int32_t nd_kid(const int32_t *x, int32_t i) {
    switch (x[0]) {
    case NB_SEQ: case NB_ALT: return x[2 + i];
    case NB_REPEAT: return x[1];
    default: return x[4 + 3 * i + 1];  /* NB_AUTO: edge i's label */
    }
}

static inline int64_t nd_len(const int32_t *x) {
    switch (x[0]) {
    case NB_LIT: return 3;
    case NB_REF: return 2;
    case NB_CLASS: return 3;
    case NB_BYTES: return 2 + 2 * (int64_t)x[1];
    case NB_SEQ: case NB_ALT: return 2 + (int64_t)x[1];
    case NB_REPEAT: return 4;
    default: return 4 + 3 * (int64_t)x[3] + 1 + x[4 + 3 * x[3]];
    }
}

/* A copy of composite node `node` with its children replaced by kids[] (a new node). */
static int32_t prep_rebuilt(Prep *P, int32_t node, const int32_t *kids) {
    const int64_t len = nd_len(P->code + node);
    if (prep_reserve(P, len) < 0) return -1;
    const int32_t out = (int32_t)P->n;
    int32_t *y = P->code + out;
    memcpy(y, P->code + node, (size_t)len * 4);
    const int32_t k = nd_nkids(y);
    for (int32_t i = 0; i < k; i++) {
        switch (y[0]) {
        case NB_SEQ: case NB_ALT: y[2 + i] = kids[i]; break;
        case NB_REPEAT: y[1] = kids[i]; break;
        default: y[4 + 3 * i + 1] = kids[i];
        }
    }
    P->n += len;
    return out;
}

static int32_t prep_node(Prep *P, const int32_t *v, int k) {
    if (prep_reserve(P, k) < 0) return -1;
    const int32_t out = (int32_t)P->n;
    memcpy(P->code + out, v, (size_t)k * 4);
    P->n += k;
    return out;
}

/* Post-order walk of the nodes under root that stW does not mark with epoch ep (each marked as
   met); post(P, node, ctx) after its children.  Returns -1 on OOM. */
typedef void (*PrepPost)(Prep *P, int32_t node, void *ctx);

/* skip: 0 none, 1 nodes with a known size, 2 nodes folded under epF (not entered, no post) */
static int prep_walk_skip(Prep *P, int32_t root, int32_t ep, PrepPost post, void *ctx, int skip);
static int prep_walk(Prep *P, int32_t root, int32_t ep, PrepPost post, void *ctx) {
    return prep_walk_skip(P, root, ep, post, ctx, 0);
}

static inline int prep_skipped(const Prep *P, int32_t c, int skip) {
    return skip == 1 ? P->sz[c] != 0 : skip == 2 ? P->stF[c] == P->epF : 0;
}

static int prep_walk_skip(Prep *P, int32_t root, int32_t ep, PrepPost post, void *ctx, int skip) {
    if (P->stW[root] == ep || prep_skipped(P, root, skip)) return 0;
    const int64_t base = P->stk_n;
    P->stW[root] = ep;
    if (SPUSH(P, root) < 0 || SPUSH(P, 0) < 0) return -1;
    while (P->stk_n > base) {
        const int32_t node = P->stk[P->stk_n - 2];
        const int32_t i = P->stk[P->stk_n - 1];
        const int32_t *x = P->code + node;
        if (i < nd_nkids(x)) {
            P->stk[P->stk_n - 1] = i + 1;
            const int32_t c = nd_kid(x, i);
            if (P->stW[c] != ep && !prep_skipped(P, c, skip)) {
                P->stW[c] = ep;
                if (SPUSH(P, c) < 0 || SPUSH(P, 0) < 0) return -1;
            }
            continue;
        }
        P->stk_n -= 2;
        if (post) post(P, node, ctx);
    }
    return 0;
}

/* size(): normalize.size */
static void post_size(Prep *P, int32_t node, void *ctx) {
    (void)ctx;
    const int32_t *x = P->code + node;
    int64_t s;
    switch (x[0]) {
    case NB_LIT: s = x[1] > 1 ? x[1] : 1; break;
    case NB_REF: case NB_CLASS: case NB_BYTES: s = 1; break;
    case NB_SEQ: case NB_ALT:
        s = 1;
        for (int32_t i = 0; i < x[1]; i++) s = sat_add(s, P->sz[x[2 + i]]);
        break;
    case NB_REPEAT: {
        const int64_t b = x[3] < 0 ? x[2] : x[3];
        s = sat_add(1, sat_mul(P->sz[x[1]], b > 1 ? b : 1));
        break;
    }
    default: {
        const int32_t ne = x[3];
        s = 1 + x[4 + 3 * ne];
        for (int32_t i = 0; i < ne; i++) s = sat_add(s, sat_add(1, P->sz[x[4 + 3 * i + 1]]));
    }
    }
    P->sz[node] = s;
}

static int64_t prep_size(Prep *P, int32_t node) {
    if (P->sz[node]) return P->sz[node];
    /* a walk marking with a fresh epoch; nodes with a known size are computed again only if met
       (cheap), their value unchanged */
    if (prep_walk_skip(P, node, ++P->epW, post_size, NULL, 1) < 0) return PREP_SAT;
    return P->sz[node];
}

/* fold: nullable (what == 0: _lead(.)[1] with flag[] the nullable rules) or productive (what ==
   1: _productive's prod with flag[] the good rules), memo stF / fv under epoch epF */
static void post_fold(Prep *P, int32_t node, void *ctx) {
    const int what = *(int *)ctx;
    const int32_t *x = P->code + node;
    uint8_t v = 0;
    switch (x[0]) {
    case NB_LIT: v = what ? 1 : x[1] == 0; break;
    case NB_REF: v = P->flag[x[1]]; break;
    case NB_CLASS: v = what ? (uint8_t)x[2] : 0; break;
    case NB_BYTES: v = what ? x[1] > 0 : 0; break;
    case NB_SEQ:
        v = 1;
        for (int32_t i = 0; i < x[1] && v; i++) v = P->fv[x[2 + i]];
        break;
    case NB_ALT:
        for (int32_t i = 0; i < x[1] && !v; i++) v = P->fv[x[2 + i]];
        break;
    case NB_REPEAT: v = x[2] == 0 || P->fv[x[1]]; break;
    default:
        if (what) v = 1;
        else {  /* start (state 0) among the finals */
            const int32_t *fin = x + 4 + 3 * x[3];
            for (int32_t i = 0; i < fin[0]; i++) v |= fin[1 + i] == 0;
        }
    }
    P->fv[node] = v;
    P->stF[node] = P->epF;
}

/* the fold's value of node under the current epF (walking what is not computed yet) */
static int prep_fold(Prep *P, int32_t node, int what) {
    if (P->stF[node] == P->epF) return P->fv[node];
    if (prep_walk_skip(P, node, ++P->epW, post_fold, &what, 2) < 0) return 0;
    return P->fv[node];
}

/* fixpoint of a fold over the rules in order[]: flag[r] for each (nullable or productive) */
static int prep_fixpoint(Prep *P, int what) {
    for (int32_t i = 0; i < P->n_order; i++) P->flag[P->order[i]] = 0;
    int changed = 1;
    while (changed && !P->oom) {
        changed = 0;
        P->epF++;
        for (int32_t i = 0; i < P->n_order; i++) {
            const int32_t r = P->order[i];
            if (!P->flag[r] && prep_fold(P, P->body[r], what)) {
                P->flag[r] = 1;
                changed = 1;  /* (folds met before this round's changes may be stale: false
                                 where true now, which only delays the fixpoint by a round) */
            }
        }
    }
    return P->oom ? -1 : 0;
}

/* the rules referenced under root (each once) appended to lst */
static void post_refs(Prep *P, int32_t node, void *ctx) {
    (void)ctx;
    if (P->code[node] == NB_REF) LPUSH(P, P->code[node + 1]);
}

static int prep_refs(Prep *P, int32_t root) {
    P->lst_n = 0;
    return prep_walk(P, root, ++P->epW, post_refs, NULL);
}

/* the rules in lead position under root (_lead(root, nullable)[0], flag[] = nullable rules,
   folded under the current epF) appended to lst, each once */
static int prep_lead(Prep *P, int32_t root) {
    P->lst_n = 0;
    const int64_t base = P->stk_n;
    prep_fold(P, root, 0);  /* the nullable folds first (a walk of their own) */
    if (P->oom) return -1;
    const int32_t ep2 = ++P->epW;
    P->stW[root] = ep2;
    if (SPUSH(P, root) < 0) return -1;
    while (P->stk_n > base) {
        const int32_t node = P->stk[--P->stk_n];
        const int32_t *x = P->code + node;
        switch (x[0]) {
        case NB_REF: if (LPUSH(P, x[1]) < 0) return -1; break;
        case NB_SEQ:
            for (int32_t i = 0; i < x[1]; i++) {
                const int32_t c = x[2 + i];
                if (P->stW[c] != ep2) { P->stW[c] = ep2; if (SPUSH(P, c) < 0) return -1; x = P->code + node; }
                if (!P->fv[c]) break;
            }
            break;
        case NB_ALT: case NB_REPEAT:
            for (int32_t i = 0; i < nd_nkids(x); i++) {
                const int32_t c = nd_kid(x, i);
                if (P->stW[c] != ep2) { P->stW[c] = ep2; if (SPUSH(P, c) < 0) return -1; x = P->code + node; }
            }
            break;
        case NB_AUTO:
            for (int32_t i = 0; i < x[3]; i++) {
                if (x[4 + 3 * i] != 0) continue;
                const int32_t c = x[4 + 3 * i + 1];
                if (P->stW[c] != ep2) { P->stW[c] = ep2; if (SPUSH(P, c) < 0) return -1; x = P->code + node; }
            }
            break;
        default: break;
        }
    }
    return 0;
}

/* A rule graph in CSR over rule ids: off[r] .. off[r + 1] index adj; rules outside order[] have
   no edges.  mode 0: the references (refs), 1: the lead rules (flag[] = nullable, folded under
   epF).  Returns 0, or -1 on OOM (freed). */
typedef struct { int64_t *off; int32_t *adj; int64_t n, cap; } RGraph;

static void rg_free(RGraph *g) { free(g->off); free(g->adj); g->off = NULL; g->adj = NULL; }

static int prep_graph(Prep *P, RGraph *g, int mode) {
    memset(g, 0, sizeof(*g));
    g->off = calloc((size_t)P->nr + 1, 8);
    int64_t *cnt = calloc((size_t)P->nr + 1, 8), *at = calloc((size_t)P->nr + 1, 8);
    int32_t *tmp = NULL; int64_t tn = 0, tcap = 0;
    if (!g->off || !cnt || !at) goto oom;
    for (int32_t i = 0; i < P->n_order; i++) {
        const int32_t r = P->order[i];
        if ((mode ? prep_lead(P, P->body[r]) : prep_refs(P, P->body[r])) < 0) goto oom;
        if (grow((void **)&tmp, &tcap, tn + P->lst_n + 1, 4) < 0) goto oom;
        memcpy(tmp + tn, P->lst, (size_t)P->lst_n * 4);
        at[r] = tn; cnt[r] = P->lst_n;
        tn += P->lst_n;
    }
    g->adj = malloc((size_t)(tn + 1) * 4);
    if (!g->adj) goto oom;
    for (int32_t r = 0; r < P->nr; r++) {
        g->off[r + 1] = g->off[r] + cnt[r];
        if (cnt[r]) memcpy(g->adj + g->off[r], tmp + at[r], (size_t)cnt[r] * 4);
    }
    g->n = tn;
    free(cnt); free(at); free(tmp);
    return 0;
oom:
    free(cnt); free(at); free(tmp); rg_free(g);
    P->oom = 1;
    return -1;
}

/* Any cycle (a self-loop included) among the rules in order[]?  1 yes, 0 no, -1 OOM. */
static int rg_has_cycle(Prep *P, const RGraph *g) {
    uint8_t *state = calloc((size_t)P->nr + 1, 1);
    int64_t *stk = malloc(((size_t)P->nr + 1) * 8);
    int rc = 0;
    if (!state || !stk) { free(state); free(stk); P->oom = 1; return -1; }
    for (int32_t i = 0; i < P->n_order && !rc; i++) {
        const int32_t root = P->order[i];
        if (state[root]) continue;
        int64_t sn = 0;
        state[root] = 1;
        stk[sn++] = (int64_t)root << 32;
        while (sn && !rc) {
            int64_t *top = stk + sn - 1;
            const int32_t r = (int32_t)(*top >> 32);
            const int64_t j = *top & 0xffffffff;
            if (g->off[r] + j < g->off[r + 1]) {
                *top += 1;
                const int32_t m = g->adj[g->off[r] + j];
                if (state[m] == 1) rc = 1;
                else if (!state[m]) { state[m] = 1; stk[sn++] = (int64_t)m << 32; }
            } else {
                state[r] = 2;
                sn--;
            }
        }
    }
    free(state); free(stk);
    return rc;
}

static int prep_lead_cycle(Prep *P) {
    if (prep_fixpoint(P, 0) < 0) return -1;
    P->epF++;
    RGraph g;
    if (prep_graph(P, &g, 1) < 0) return -1;
    const int rc = rg_has_cycle(P, &g);
    rg_free(&g);
    return rc;
}

/* counts[r] = the references to r in the bodies of the rules in order[] (_ref_counts summed:
   every path from a body to a Ref counts, saturated) */
static void post_list(Prep *P, int32_t node, void *ctx) { (void)ctx; LPUSH(P, node); }

static int prep_counts(Prep *P, int64_t *counts) {
    memset(counts, 0, (size_t)P->nr * 8);
    P->lst_n = 0;
    const int32_t ep = ++P->epW;
    for (int32_t i = 0; i < P->n_order; i++)
        if (prep_walk(P, P->body[P->order[i]], ep, post_list, NULL) < 0 || P->oom) return -1;
    for (int64_t i = 0; i < P->lst_n; i++) P->mult[P->lst[i]] = 0;
    for (int32_t i = 0; i < P->n_order; i++) {
        const int32_t b = P->body[P->order[i]];
        P->mult[b] = sat_add(P->mult[b], 1);
    }
    for (int64_t i = P->lst_n - 1; i >= 0; i--) {  /* reversed post-order: parents first */
        const int32_t node = P->lst[i];
        const int64_t m = P->mult[node];
        const int32_t *x = P->code + node;
        if (!m) continue;
        if (x[0] == NB_REF) { counts[x[1]] = sat_add(counts[x[1]], m); continue; }
        const int32_t k = nd_nkids(x);
        for (int32_t j = 0; j < k; j++) {
            const int32_t c = nd_kid(x, j);
            P->mult[c] = sat_add(P->mult[c], m);
        }
    }
    return 0;
}

/* rec[r] = r lies on a cycle of the reference graph g (Tarjan, iterative) */
static int rg_recursive(Prep *P, const RGraph *g, uint8_t *rec) {
    const int32_t nr = P->nr;
    int32_t *index = malloc((size_t)(nr + 1) * 4), *low = malloc((size_t)(nr + 1) * 4);
    int32_t *stack = malloc((size_t)(nr + 1) * 4);
    int64_t *work = malloc((size_t)(nr + 1) * 16);
    uint8_t *on = calloc((size_t)nr + 1, 1);
    if (!index || !low || !stack || !work || !on) {
        free(index); free(low); free(stack); free(work); free(on); P->oom = 1; return -1;
    }
    for (int32_t r = 0; r < nr; r++) { index[r] = -1; rec[r] = 0; }
    int32_t counter = 0, sp = 0;
    for (int32_t oi = 0; oi < P->n_order; oi++) {
        const int32_t root = P->order[oi];
        if (index[root] >= 0) continue;
        int64_t wn = 0;
        work[2 * wn] = root; work[2 * wn + 1] = 0; wn++;
        index[root] = low[root] = counter++;
        stack[sp++] = root; on[root] = 1;
        while (wn) {
            const int32_t v = (int32_t)work[2 * (wn - 1)];
            const int64_t i = work[2 * (wn - 1) + 1];
            if (g->off[v] + i < g->off[v + 1]) {
                work[2 * (wn - 1) + 1] = i + 1;
                const int32_t w = g->adj[g->off[v] + i];
                if (w == v) rec[v] = 1;
                if (index[w] < 0) {
                    index[w] = low[w] = counter++;
                    stack[sp++] = w; on[w] = 1;
                    work[2 * wn] = w; work[2 * wn + 1] = 0; wn++;
                } else if (on[w] && index[w] < low[v]) {
                    low[v] = index[w];
                }
                continue;
            }
            wn--;
            if (wn) {
                const int32_t u = (int32_t)work[2 * (wn - 1)];
                if (low[v] < low[u]) low[u] = low[v];
            }
            if (low[v] == index[v]) {
                int32_t size = 0, x;
                int32_t top = sp;
                do { x = stack[--sp]; on[x] = 0; size++; } while (x != v);
                if (size > 1)
                    for (int32_t j = sp; j < top; j++) rec[stack[j]] = 1;
            }
        }
    }
    free(index); free(low); free(stack); free(work); free(on);
    return 0;
}

/* A rewrite of the nodes under root, top-down, memo A (epoch epA): pre(node) gives a node's
   replacement (not entered) or -1; otherwise a composite is rebuilt from its children's
   rewrites (itself when none changed): normalize._leaf_mapper / _inline's subst. */
typedef int32_t (*PrepPre)(Prep *P, int32_t node, void *ctx);

static int32_t map_try(Prep *P, int32_t c, PrepPre pre, void *ctx) {
    if (P->stA[c] == P->epA) return P->valA[c];
    int32_t r = pre(P, c, ctx);
    if (r < 0) {
        if (nd_nkids(P->code + c)) return -1;
        r = c;
    }
    P->stA[c] = P->epA; P->valA[c] = r;
    return r;
}

static int32_t prep_map(Prep *P, int32_t root, PrepPre pre, void *ctx) {
    int32_t r = map_try(P, root, pre, ctx);
    if (r >= 0 || P->oom) return r;
    int32_t *kids = NULL; int64_t kn = 0, kcap = 0;
    const int64_t base = P->stk_n;
    int32_t res = -1;
    if (SPUSH(P, root) < 0 || SPUSH(P, 0) < 0 || SPUSH(P, 0) < 0) goto out;
    while (P->stk_n > base) {
        int32_t *f = P->stk + P->stk_n - 3;
        const int32_t node = f[0], i = f[1], kb = f[2];
        const int32_t *x = P->code + node;
        const int32_t k = nd_nkids(x);
        if (i < k) {
            f[1] = i + 1;
            const int32_t c = nd_kid(x, i);
            r = map_try(P, c, pre, ctx);
            if (P->oom) goto out;
            if (r >= 0) {
                if (prep_push(P, &kids, &kn, &kcap, r) < 0) goto out;
            } else if (SPUSH(P, c) < 0 || SPUSH(P, 0) < 0 || SPUSH(P, (int32_t)kn) < 0) goto out;
            continue;
        }
        int changed = 0;
        for (int32_t j = 0; j < k && !changed; j++) changed = kids[kb + j] != nd_kid(x, j);
        const int32_t o = changed ? prep_rebuilt(P, node, kids + kb) : node;
        if (o < 0) goto out;
        P->stA[node] = P->epA; P->valA[node] = o;
        kn = kb;
        P->stk_n -= 3;
        if (P->stk_n > base) {
            if (prep_push(P, &kids, &kn, &kcap, o) < 0) goto out;
        } else res = o;
    }
out:
    free(kids);
    P->stk_n = base;
    return P->oom ? -1 : res;
}

/* references to the rules marked in sel (uint8 per rule) -> repl[rule] */
typedef struct { const uint8_t *sel; const int32_t *repl; } RefSub;

static int32_t pre_refsub(Prep *P, int32_t node, void *ctx) {
    const RefSub *s = ctx;
    const int32_t *x = P->code + node;
    return x[0] == NB_REF && s->sel[x[1]] ? s->repl[x[1]] : -1;
}

/* does the body of r refer to a rule marked in sel? */
static int prep_refers(Prep *P, int32_t r, const uint8_t *sel) {
    if (prep_refs(P, P->body[r]) < 0) return -1;
    for (int64_t i = 0; i < P->lst_n; i++) if (sel[P->lst[i]]) return 1;
    return 0;
}

/* _inline_cycle_members: batches of small recursion-cycle members inlined, round by round */
static int prep_cycle_members(Prep *P, const uint8_t *rec) {
    const int32_t nr = P->nr;
    int64_t *counts = malloc((size_t)nr * 8 + 8);
    uint8_t *inb = calloc((size_t)nr + 1, 1), *bref = calloc((size_t)nr + 1, 1);
    int32_t *repl = malloc((size_t)nr * 4 + 4);
    int rc = -1;
    if (!counts || !inb || !bref || !repl) { P->oom = 1; goto out; }
    for (;;) {
        if (prep_counts(P, counts) < 0) goto out;
        memset(inb, 0, (size_t)nr); memset(bref, 0, (size_t)nr);
        int any = 0;
        for (int32_t i = 0; i < P->n_order; i++) {
            const int32_t r = P->order[i];
            if (r == P->start || !rec[r] || bref[r]) continue;
            if (prep_refs(P, P->body[r]) < 0) goto out;
            int skip = 0;
            for (int64_t j = 0; j < P->lst_n && !skip; j++) skip = P->lst[j] == r || inb[P->lst[j]];
            if (skip) continue;
            const int64_t c = counts[r] - 1 > 1 ? counts[r] - 1 : 1;
            if (sat_mul(prep_size(P, P->body[r]), c) > PREP_INLINE_SMALL) continue;
            if (P->oom) goto out;
            inb[r] = 1; any = 1;
            repl[r] = P->body[r];
            if (prep_refs(P, P->body[r]) < 0) goto out;
            for (int64_t j = 0; j < P->lst_n; j++) bref[P->lst[j]] = 1;
        }
        if (!any) break;
        RefSub s = {inb, repl};
        int32_t n = 0;
        for (int32_t i = 0; i < P->n_order; i++) {
            const int32_t r = P->order[i];
            if (inb[r]) continue;
            const int hit = prep_refers(P, r, inb);
            if (hit < 0) goto out;
            if (hit) {
                P->epA++;  /* a mapper per rule (_map_leaves) */
                const int32_t b = prep_map(P, P->body[r], pre_refsub, &s);
                if (b < 0) goto out;
                P->body[r] = b;
            }
            P->order[n++] = r;
        }
        P->n_order = n;
    }
    rc = 0;
out:
    free(counts); free(inb); free(bref); free(repl);
    return rc;
}

typedef struct { const uint8_t *inl; const int32_t *exp; } Subst;

static int32_t pre_subst(Prep *P, int32_t node, void *ctx) {
    const Subst *s = ctx;
    const int32_t *x = P->code + node;
    return x[0] == NB_REF && s->inl[x[1]] ? s->exp[x[1]] : -1;
}

/* _inline, then the rules reachable from start */
static int prep_inline(Prep *P, const uint8_t *frames) {
    const int32_t nr = P->nr;
    int64_t *uses = malloc((size_t)nr * 8 + 8);
    uint8_t *rec = calloc((size_t)nr + 1, 1), *inl = calloc((size_t)nr + 1, 1);
    uint8_t *state = calloc((size_t)nr + 1, 1);
    int32_t *exp = malloc((size_t)nr * 4 + 4), *topo = malloc((size_t)nr * 4 + 4);
    int64_t *stk = malloc((size_t)nr * 8 + 8);
    RGraph g = {0};
    int rc = -1;
    if (!uses || !rec || !inl || !state || !exp || !topo || !stk) { P->oom = 1; goto out; }
    if (prep_counts(P, uses) < 0 || prep_graph(P, &g, 0) < 0 || rg_recursive(P, &g, rec) < 0) goto out;
    /* the non-recursive rules, callees first (an iterative DFS over their references) */
    int32_t nt = 0;
    for (int32_t i = 0; i < P->n_order; i++) {
        const int32_t root = P->order[i];
        if (rec[root] || state[root]) continue;
        int64_t sn = 0;
        state[root] = 1;
        stk[sn++] = (int64_t)root << 32;
        while (sn) {
            int64_t *top = stk + sn - 1;
            const int32_t r = (int32_t)(*top >> 32);
            const int64_t j = *top & 0xffffffff;
            if (g.off[r] + j < g.off[r + 1]) {
                *top += 1;
                const int32_t m = g.adj[g.off[r] + j];
                if (!rec[m] && !state[m]) { state[m] = 1; stk[sn++] = (int64_t)m << 32; }
            } else {
                topo[nt++] = r;
                sn--;
            }
        }
    }
    Subst s = {inl, exp};
    P->epA++;  /* one memo for the whole pass (`done`) */
    for (int32_t i = 0; i < nt; i++) {
        const int32_t r = topo[i];
        exp[r] = prep_map(P, P->body[r], pre_subst, &s);
        if (exp[r] < 0) goto out;
        const int64_t es = prep_size(P, exp[r]);
        if (P->oom) goto out;
        inl[r] = r != P->start && !frames[r] &&
                 (es <= PREP_INLINE_TINY || uses[r] == 1 || sat_mul(es, uses[r]) <= PREP_INLINE_BUDGET);
    }
    int32_t n = 0;
    for (int32_t i = 0; i < P->n_order; i++) {
        const int32_t r = P->order[i];
        if (!(r == P->start || rec[r] || !inl[r])) continue;
        if (rec[r]) {
            const int32_t b = prep_map(P, P->body[r], pre_subst, &s);
            if (b < 0) goto out;
            P->body[r] = b;
        } else P->body[r] = exp[r];
        P->order[n++] = r;
    }
    P->n_order = n;
    if (prep_cycle_members(P, rec) < 0) goto out;
    /* reachable from start */
    memset(state, 0, (size_t)nr);
    int32_t *todo = topo, tn = 0;
    state[P->start] = 1; todo[tn++] = P->start;
    while (tn) {
        const int32_t r = todo[--tn];
        if (prep_refs(P, P->body[r]) < 0) goto out;
        for (int64_t j = 0; j < P->lst_n; j++) {
            const int32_t m = P->lst[j];
            if (!state[m]) { state[m] = 1; todo[tn++] = m; }
        }
    }
    n = 0;
    for (int32_t i = 0; i < P->n_order; i++)
        if (state[P->order[i]]) P->order[n++] = P->order[i];
    P->n_order = n;
    rc = 0;
out:
    rg_free(&g);
    free(uses); free(rec); free(inl); free(state); free(exp); free(topo); free(stk);
    return rc;
}

/* _hoist_repeats */
typedef struct {
    int32_t owner, n_pre;  /* n_pre: rules before the pass (later ones are hoisted: no graph) */
    RGraph rev;            /* the reference graph reversed */
    uint8_t *anc;          /* anc[r]: r reaches owner (computed per owner on first need) */
    int32_t anc_owner;
    int32_t *bfs;
    int32_t count;
} Hoist;

/* any rule leading `item` reaches owner (normalize: any(reaches(r, owner) for r in _lead(...)))? */
static int hoist_reaches(Prep *P, Hoist *H, int32_t item) {
    if (prep_lead(P, item) < 0) return -1;
    if (H->anc_owner != H->owner) {
        memset(H->anc, 0, (size_t)H->n_pre);
        int32_t bn = 0;
        H->bfs[bn++] = H->owner;
        while (bn) {
            const int32_t r = H->bfs[--bn];
            for (int64_t j = H->rev.off[r]; j < H->rev.off[r + 1]; j++) {
                const int32_t m = H->rev.adj[j];
                if (!H->anc[m]) { H->anc[m] = 1; H->bfs[bn++] = m; }
            }
        }
        H->anc_owner = H->owner;
    }
    for (int64_t j = 0; j < P->lst_n; j++) {
        const int32_t r = P->lst[j];
        if (r == H->owner || (r < H->n_pre && H->anc[r])) return 1;
    }
    return 0;
}

static int32_t hoist_rule(Prep *P, Hoist *H, int32_t body, int32_t kind, int32_t num) {
    const int32_t r = prep_new_rule(P, body, kind, H->owner, num);
    if (r < 0) return -1;
    P->order[P->n_order++] = r;
    const int32_t v[2] = {NB_REF, r};
    return prep_node(P, v, 2);
}

/* visit(c) without a frame, or -1 (a frame needed); memo A is `seen` */
static int32_t hv_try(Prep *P, int32_t c) {
    if (P->stA[c] == P->epA) return P->valA[c];
    if (prep_size(P, c) <= PREP_HOIST_LIMIT || !nd_nkids(P->code + c)) return c;
    return -1;
}

/* the visit of a node's rewrite (its children's rewrites in kids): `visit`'s last part */
static int32_t hv_post(Prep *P, Hoist *H, int32_t node, const int32_t *kids) {
    const int32_t *x = P->code + node;
    if (x[0] == NB_REPEAT && x[3] >= 0) {
        const int32_t item = kids[0], lo = x[2], hi = x[3];
        const int64_t n = prep_size(P, item);
        if (n >= PREP_HOIST_ITEM && sat_mul(n, hi) > PREP_HOIST_LIMIT) {
            const int reach = hoist_reaches(P, H, item);
            if (reach < 0) return -1;
            if (!reach) {
                const int32_t ref = hoist_rule(P, H, item, 1, ++H->count);
                if (ref < 0) return -1;
                const int32_t v[4] = {NB_REPEAT, ref, lo, hi};
                return prep_node(P, v, 4);
            }
        }
        if (item == x[1]) return node;
        const int32_t v[4] = {NB_REPEAT, item, lo, hi};
        return prep_node(P, v, 4);
    }
    if (x[0] == NB_AUTO) return prep_rebuilt(P, node, kids);  /* always a new automaton */
    const int32_t k = nd_nkids(x);
    for (int32_t j = 0; j < k; j++)
        if (kids[j] != nd_kid(x, j)) return prep_rebuilt(P, node, kids);
    return node;
}

/* the end of hoist(label) once visit(label) gave v: pend 0 kept (memo only), K > 0 hoisted as
   owner~labelK; memo B is `hoisted` */
static int32_t hv_label_done(Prep *P, Hoist *H, int32_t label, int32_t v, int32_t pend) {
    int32_t out = v;
    if (pend > 0 && (out = hoist_rule(P, H, v, 2, pend)) < 0) return -1;
    P->stB[label] = P->epB; P->valB[label] = out;
    return out;
}

static int32_t hoist_visit(Prep *P, Hoist *H, int32_t root) {
    int32_t r = hv_try(P, root);
    if (r >= 0 || P->oom) return r;
    int32_t *kids = NULL; int64_t kn = 0, kcap = 0;
    const int64_t base = P->stk_n;
    int32_t res = -1;
    /* frames of 4 ints: node, next child, kids base, the pending hoist of the child in visit
       (automaton labels: -1 none, 0 kept, K hoisted) */
    if (SPUSH(P, root) < 0 || SPUSH(P, 0) < 0 || SPUSH(P, 0) < 0 || SPUSH(P, -1) < 0) goto out;
    while (P->stk_n > base) {
        int32_t *f = P->stk + P->stk_n - 4;
        const int32_t node = f[0], i = f[1], kb = f[2];
        const int32_t *x = P->code + node;
        const int32_t k = nd_nkids(x);
        if (i < k) {
            f[1] = i + 1;
            const int32_t c = nd_kid(x, i);
            int32_t pend = -1;
            if (x[0] == NB_AUTO) {  /* hoist(label) */
                if (P->stB[c] == P->epB) {
                    if (prep_push(P, &kids, &kn, &kcap, P->valB[c]) < 0) goto out;
                    continue;
                }
                if (prep_size(P, c) < PREP_HOIST_ITEM) pend = 0;
                else {
                    const int reach = hoist_reaches(P, H, c);
                    if (reach < 0) goto out;
                    pend = reach ? 0 : ++H->count;
                }
            }
            r = hv_try(P, c);
            if (P->oom) goto out;
            if (r >= 0) {
                if (pend >= 0 && (r = hv_label_done(P, H, c, r, pend)) < 0) goto out;
                if (prep_push(P, &kids, &kn, &kcap, r) < 0) goto out;
            } else {
                P->stk[P->stk_n - 1] = pend;  /* f may have moved: the frame's last int */
                if (SPUSH(P, c) < 0 || SPUSH(P, 0) < 0 || SPUSH(P, (int32_t)kn) < 0 || SPUSH(P, -1) < 0) goto out;
            }
            continue;
        }
        const int32_t o = hv_post(P, H, node, kids + kb);
        if (o < 0) goto out;
        P->stA[node] = P->epA; P->valA[node] = o;
        kn = kb;
        P->stk_n -= 4;
        if (P->stk_n > base) {
            int32_t *pf = P->stk + P->stk_n - 4;
            int32_t v = o;
            if (pf[3] >= 0) {
                v = hv_label_done(P, H, node, o, pf[3]);
                if (v < 0) goto out;
                P->stk[P->stk_n - 1] = -1;
            }
            if (prep_push(P, &kids, &kn, &kcap, v) < 0) goto out;
        } else res = o;
    }
out:
    free(kids);
    P->stk_n = base;
    return P->oom ? -1 : res;
}

static int prep_hoist(Prep *P) {
    Hoist H;
    memset(&H, 0, sizeof(H));
    H.n_pre = P->nr;
    H.anc_owner = -1;
    RGraph g;
    int rc = -1;
    if (prep_graph(P, &g, 0) < 0) return -1;
    if (prep_fixpoint(P, 0) < 0) { rg_free(&g); return -1; }
    P->epF++;  /* the nullable folds of this pass: flag[] fixed (hoisted rules: not nullable) */
    /* the reverse graph */
    H.rev.off = calloc((size_t)P->nr + 2, 8);
    H.rev.adj = malloc((size_t)g.n * 4 + 4);
    H.anc = calloc((size_t)P->nr + 1, 1);
    H.bfs = malloc(((size_t)P->nr + 1) * 4);
    int64_t *at = malloc(((size_t)P->nr + 1) * 8);
    if (!H.rev.off || !H.rev.adj || !H.anc || !H.bfs || !at) { P->oom = 1; goto out; }
    for (int32_t r = 0; r < P->nr; r++)
        for (int64_t j = g.off[r]; j < g.off[r + 1]; j++) H.rev.off[g.adj[j] + 1]++;
    for (int32_t r = 0; r < P->nr; r++) H.rev.off[r + 1] += H.rev.off[r];
    memcpy(at, H.rev.off, (size_t)P->nr * 8);
    for (int32_t r = 0; r < P->nr; r++)
        for (int64_t j = g.off[r]; j < g.off[r + 1]; j++) H.rev.adj[at[g.adj[j]]++] = r;
    const int32_t n_pre_order = P->n_order;
    for (int32_t i = 0; i < n_pre_order; i++) {
        const int32_t r = P->order[i];
        H.owner = r;
        P->epA++; P->epB++;  /* seen, hoisted: per owner */
        const int32_t b = hoist_visit(P, &H, P->body[r]);
        if (b < 0) goto out;
        P->body[r] = b;
    }
    rc = 0;
out:
    rg_free(&g); rg_free(&H.rev);
    free(H.anc); free(H.bfs); free(at);
    return rc;
}

static void post_depth(Prep *P, int32_t node, void *ctx) {
    (void)ctx;
    const int32_t *x = P->code + node;
    int64_t d = 0;
    const int32_t k = nd_nkids(x);
    for (int32_t j = 0; j < k; j++) if (P->mult[nd_kid(x, j)] > d) d = P->mult[nd_kid(x, j)];
    P->mult[node] = d + 1;
}

static void post_renumber(Prep *P, int32_t node, void *ctx) {
    const int32_t *idx = ctx;
    if (P->code[node] == NB_REF) P->code[node + 1] = idx[P->code[node + 1]];
}

static int64_t live_preps;  /* gs_prep_run handles not yet freed (tests read it) */
int64_t gs_live_preps(void) { return __atomic_load_n(&live_preps, __ATOMIC_RELAXED); }

void gs_prep_free(void *h) {
    Prep *P = h;
    if (!P) return;
    free(P->code); free(P->sz); free(P->mult); free(P->stA); free(P->valA); free(P->stB); free(P->valB);
    free(P->stW); free(P->stF); free(P->fv);
    free(P->body); free(P->kind); free(P->owner); free(P->num); free(P->flag); free(P->order); free(P->roots);
    free(P->stk); free(P->lst);
    free(P);
    __atomic_fetch_sub(&live_preps, 1, __ATOMIC_RELAXED);
}

static int prep_steps(Prep *P, const uint8_t *frames) {
    /* left recursion anywhere: the Python passes */
    int c = prep_lead_cycle(P);
    if (c) return c < 0 ? -1 : (P->status = PREP_FALLBACK, 0);
    /* productive rules */
    if (prep_fixpoint(P, 1) < 0) return -1;
    if (!P->flag[P->start]) { P->status = PREP_UNPRODUCTIVE; return 0; }
    int32_t n = 0, bad = 0;
    uint8_t *sel = calloc((size_t)P->nr + 1, 1);
    int32_t *repl = malloc(((size_t)P->nr + 1) * 4);
    if (!sel || !repl) { free(sel); free(repl); P->oom = 1; return -1; }
    for (int32_t i = 0; i < P->n_order; i++) {
        const int32_t r = P->order[i];
        if (!P->flag[r]) { sel[r] = 1; bad = 1; }
    }
    if (bad) {  /* references to unproductive rules -> Alt(()) (one object), one memo */
        const int32_t v[2] = {NB_ALT, 0};
        const int32_t nothing = prep_node(P, v, 2);
        if (nothing < 0) { free(sel); free(repl); return -1; }
        for (int32_t r = 0; r < P->nr; r++) repl[r] = nothing;
        RefSub s = {sel, repl};
        P->epA++;
        for (int32_t i = 0; i < P->n_order; i++) {
            const int32_t r = P->order[i];
            if (sel[r]) continue;
            const int hit = prep_refers(P, r, sel);
            int32_t b = P->body[r];
            if (hit < 0 || (hit && (b = prep_map(P, b, pre_refsub, &s)) < 0)) { free(sel); free(repl); return -1; }
            P->body[r] = b;
            P->order[n++] = r;
        }
        P->n_order = n;
    }
    free(sel); free(repl);
    if (prep_inline(P, frames) < 0 || prep_hoist(P) < 0) return -1;
    /* the final order: start first */
    n = P->n_order;
    for (int32_t i = 0; i < n; i++)
        if (P->order[i] == P->start) {  /* moved to the front, the rules before it one place on */
            memmove(P->order + 1, P->order, (size_t)i * 4);
            P->order[0] = P->start;
            break;
        }
    c = prep_lead_cycle(P);  /* (none is expected: then the Python eliminations do nothing) */
    if (c) return c < 0 ? -1 : (P->status = PREP_FALLBACK, 0);
    /* depth (gs_nfa_build recurses), then rule numbers -> final indices */
    const int32_t ep = ++P->epW;
    for (int32_t i = 0; i < n; i++) {
        if (prep_walk(P, P->body[P->order[i]], ep, post_depth, NULL) < 0) return -1;
        if (P->mult[P->body[P->order[i]]] > PREP_MAX_DEPTH) { P->status = PREP_TOO_DEEP; return 0; }
    }
    int32_t *idx = malloc(((size_t)P->nr + 1) * 4);
    P->roots = malloc(((size_t)n + 1) * 4);
    if (!idx || !P->roots) { free(idx); P->oom = 1; return -1; }
    for (int32_t i = 0; i < n; i++) { idx[P->order[i]] = i; P->roots[i] = P->body[P->order[i]]; }
    const int32_t ep2 = ++P->epW;
    for (int32_t i = 0; i < n; i++)
        if (prep_walk(P, P->roots[i], ep2, post_renumber, idx) < 0) { free(idx); return -1; }
    free(idx);
    return P->oom ? -1 : 0;
}

/* Runs the passes on the raw grammar's code (n ints; n_rules roots; start: the start rule;
   frames[r]: rule r is kept as a frame).  Returns a handle (gs_prep_status, gs_prep_rules,
   gs_prep_nfa; freed by gs_prep_free), or NULL when out of memory. */
void *gs_prep_run(const int32_t *code, int64_t n, const uint8_t *pool, int32_t n_rules, const int32_t *roots,
                  int32_t start, const uint8_t *frames) {
    Prep *P = calloc(1, sizeof(Prep));
    if (!P) return NULL;
    __atomic_fetch_add(&live_preps, 1, __ATOMIC_RELAXED);
    P->pool = pool;
    P->start = start;
    if (prep_reserve(P, n + 16) < 0) goto oom;
    memcpy(P->code, code, (size_t)n * 4);
    P->n = n;
    for (int32_t r = 0; r < n_rules; r++) if (prep_new_rule(P, roots[r], 0, r, 0) < 0) goto oom;
    for (int32_t r = 0; r < n_rules; r++) P->order[r] = r;
    P->n_order = n_rules;
    if (prep_steps(P, frames) < 0 || P->oom) goto oom;
    return P;
oom:
    gs_prep_free(P);
    return NULL;
}

int32_t gs_prep_status(void *h) { return ((Prep *)h)->status; }

/* The kept rules in their final order: returns their count; when out is given, 3 ints each:
   kind (0 a grammar rule, 1 owner~itemK, 2 owner~labelK), the grammar rule's index (its owner's
   for a hoisted rule), K. */
int32_t gs_prep_rules(void *h, int32_t *out) {
    Prep *P = h;
    if (out)
        for (int32_t i = 0; i < P->n_order; i++) {
            const int32_t r = P->order[i];
            out[3 * i] = P->kind[r]; out[3 * i + 1] = P->owner[r]; out[3 * i + 2] = P->num[r];
        }
    return P->n_order;
}

/* gs_nfa_build on the result (the handle must live until then; the build does not keep it) */
void *gs_prep_nfa(void *h) {
    Prep *P = h;
    return gs_nfa_build(P->code, P->pool, P->n_order, P->roots);
}
