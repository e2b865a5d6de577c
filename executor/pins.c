/*
 * Pinned MCP tool definitions (pins.h).
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "common/log.h"
#include "common/xmalloc.h"
#include "executor/executor.h"
#include "executor/store.h"
#include "executor/pins.h"

/* What is pinned of a definition; the name is the key already. */
static const char *const pinned_keys[] = {
	"description", "inputSchema", "annotations", NULL
};

void
pins_hash(json_t *def, uint8_t hash[PIN_HASH_LEN], char **canon)
{
	json_t	*o, *v;
	char	*s;
	size_t	 i;

	if ((o = json_object()) == NULL)
		fatalx("%s: out of memory", __func__);
	for (i = 0; pinned_keys[i] != NULL; i++)
		if ((v = json_object_get(def, pinned_keys[i])) != NULL &&
		    json_object_set(o, pinned_keys[i], v) == -1)
			fatalx("%s: out of memory", __func__);
	/*
	 * Sorted keys, no white space, UTF-8 as is: the same definition
	 * gives the same text (and a float the same shortest form).
	 */
	s = json_dumps(o, JSON_SORT_KEYS | JSON_COMPACT | JSON_ENSURE_ASCII |
	    JSON_ENCODE_ANY);
	json_decref(o);
	if (s == NULL)
		fatalx("%s: json_dumps", __func__);
	crypto_hash_sha256(hash, (const unsigned char *)s, strlen(s));
	if (canon != NULL)
		*canon = s;
	else
		free(s);
}

struct pin_arg {
	const char	*tool;
	uint8_t		*hash;
	const char	*canon;
};

static int
pins_get_txn(struct store_txn *txn, void *arg)
{
	struct pin_arg		*pa = arg;
	struct store_val	 k, v;
	int			 rc;

	k.data = (void *)pa->tool;
	k.size = strlen(pa->tool);
	if ((rc = stx_get(txn, DB_PINS, &k, &v)) != 0)
		return rc;
	if (v.size < PIN_HASH_LEN)
		return STORE_CORRUPT;
	memcpy(pa->hash, v.data, PIN_HASH_LEN);
	return 0;
}

int
pins_get(const char *tool, uint8_t hash[PIN_HASH_LEN])
{
	struct pin_arg	pa = { tool, hash, NULL };
	int		rc;

	rc = store_read(ex->store, pins_get_txn, &pa);
	if (rc == 0)
		return 1;
	if (rc == STORE_NOTFOUND)
		return 0;
	log_warnx("pin of tool %s: %s", tool, store_strerror(rc));
	return -1;
}

static int
pins_put_txn(struct store_txn *txn, void *arg)
{
	struct pin_arg		*pa = arg;
	struct store_val	 k, v;
	size_t			 clen = strlen(pa->canon);
	int			 rc;

	k.data = (void *)pa->tool;
	k.size = strlen(pa->tool);
	v.size = PIN_HASH_LEN + clen;
	v.data = xmalloc(v.size);
	memcpy(v.data, pa->hash, PIN_HASH_LEN);
	memcpy((char *)v.data + PIN_HASH_LEN, pa->canon, clen);
	rc = stx_put(txn, DB_PINS, &k, &v);
	free(v.data);
	return rc;
}

int
pins_put(const char *tool, const uint8_t hash[PIN_HASH_LEN],
    const char *canon)
{
	struct pin_arg	pa = { tool, (uint8_t *)hash, canon };
	int		rc;

	if ((rc = store_write(ex->store, pins_put_txn, &pa)) != 0) {
		log_warnx("pin of tool %s: %s", tool, store_strerror(rc));
		return -1;
	}
	return 0;
}
