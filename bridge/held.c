/*
 * The approvals this session asked for, by (gate tool, canonical JSON of
 * the args): a call that ran out of --approval-wait-ms, asked again with
 * the same arguments, waits for and resumes the approval it already has
 * instead of asking an operator anew.  An entry stays after its write
 * ran, so a client that retries once more gets the stored result
 * (replayed) from the same checkpoint rather than a second call, which
 * the gate would refuse as a duplicate write; it goes when the approval
 * is denied or expired, or the checkpoint no longer resumes.
 *
 * The canonical JSON is the gate's own (common/canon.c): two calls are
 * the same exactly when the gate would give them one args hash.  At most
 * HELD_MAX entries; past that the oldest is forgotten (its retry then
 * asks anew, which the operator sees).
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <msgpack.h>

#include "common/canon.h"
#include "common/jsonmp.h"
#include "common/log.h"
#include "common/xmalloc.h"
#include "bridge/bridge.h"

static TAILQ_HEAD(, held) helds = TAILQ_HEAD_INITIALIZER(helds);
static size_t	nheld;

char *
held_key(const char *gate, json_t *args)
{
	struct canon_buf	 json = { NULL, 0, 0 };
	msgpack_sbuffer		 sb;
	msgpack_packer		 pk;
	msgpack_unpacked	 u;
	char			 err[128], *key = NULL;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_unpacked_init(&u);
	if (json_value_to_msgpack(args, &pk, err, sizeof(err)) == 0 &&
	    msgpack_unpack_next(&u, sb.data, sb.size, NULL) ==
	    MSGPACK_UNPACK_SUCCESS &&
	    canon_json(&u.data, 1, &json, err, sizeof(err)) == 0) {
		/* A tool name holds no NUL: "tool\0json" cannot be forged. */
		key = xmalloc(strlen(gate) + 1 + json.len + 1);
		memcpy(key, gate, strlen(gate) + 1);
		memcpy(key + strlen(gate) + 1, json.data, json.len);
		key[strlen(gate) + 1 + json.len] = '\0';
	}
	canon_buf_free(&json);
	msgpack_unpacked_destroy(&u);
	msgpack_sbuffer_destroy(&sb);
	return key;
}

/* Keys hold one NUL inside: compare both parts. */
static int
key_eq(const char *a, const char *b)
{
	return strcmp(a, b) == 0 &&
	    strcmp(a + strlen(a) + 1, b + strlen(b) + 1) == 0;
}

struct held *
held_find(const char *key)
{
	struct held	*h;

	TAILQ_FOREACH(h, &helds, entry)
		if (key_eq(h->key, key))
			return h;
	return NULL;
}

static void
held_free(struct held *h)
{
	TAILQ_REMOVE(&helds, h, entry);
	nheld--;
	free(h->key);
	free(h->approval_id);
	free(h->checkpoint);
	free(h);
}

static char *
key_dup(const char *key)
{
	size_t	 a = strlen(key) + 1, b = strlen(key + a) + 1;
	char	*k = xmalloc(a + b);

	memcpy(k, key, a + b);
	return k;
}

struct held *
held_put(const char *key, const char *approval_id, const char *checkpoint,
    int64_t expires_at)
{
	struct held	*h;

	if ((h = held_find(key)) != NULL)
		held_free(h);
	if (nheld >= HELD_MAX)
		held_free(TAILQ_FIRST(&helds));
	h = xcalloc(1, sizeof(*h));
	h->key = key_dup(key);
	h->approval_id = xstrdup(approval_id);
	h->checkpoint = xstrdup(checkpoint);
	h->expires_at = expires_at;
	TAILQ_INSERT_TAIL(&helds, h, entry);
	nheld++;
	return h;
}

void
held_drop(const char *key)
{
	struct held	*h;

	if ((h = held_find(key)) != NULL)
		held_free(h);
}
