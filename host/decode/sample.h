/*
 * sample.h - greedy next-token selection from a logits row. The generation loop (generate.h)
 * samples with its own filters; this is the plain argmax `moecard bench` decodes with.
 */
#ifndef MOECARD_SAMPLE_H
#define MOECARD_SAMPLE_H

/* sampler_argmax - index of the largest logit (lowest index on ties). */
int sampler_argmax(const float *logits, int n);

#endif
