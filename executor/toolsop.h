/*
 * The agents' tools op (CONTRACT.md, "The tools op"): the tools the
 * principal of a TOOLS message may call, with their modes, descriptions
 * and input schemas, answered as TOOLS_ANS.
 */
#ifndef TG_TOOLSOP_H
#define TG_TOOLSOP_H

struct proto_msg;

void	tools_answer(const struct proto_msg *);

#endif
