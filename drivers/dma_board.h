/*
 * dma_board.h - the bridge from a parsed card description (board/board.h) to a DMA device
 * configuration (dma.h): banks, channels, link bandwidth and descriptor latency from the dts.
 */
#ifndef MOECARD_DMA_BOARD_H
#define MOECARD_DMA_BOARD_H

#include "dma.h"

struct board_desc;

/*
 * Fills banks[0..b->n_banks) and *cfg from board b: every bank (base, size, bandwidth from
 * bw_mbps, name pointing into b, XRT group = position), one channel per H2C/C2H engine pair
 * (max of the two counts, at most DMA_MAX_CHANNELS), link_bw from pcie_bw_mbps and the largest
 * per-descriptor latency of the channels. Other cfg fields are zeroed (defaults). b must outlive
 * the device opened with cfg only for the bank names.
 * Errors: -EINVAL NULL argument, or a board without banks, DMA channels or PCIe bandwidth;
 * -ENOSPC more banks than max_banks.
 */
int dma_config_from_board(const struct board_desc *b, struct dma_bank *banks, unsigned max_banks,
			  struct dma_config *cfg);

#endif /* MOECARD_DMA_BOARD_H */
