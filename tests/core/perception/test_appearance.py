"""Colour embeddings: unit Hellinger histograms of the person pixels, upper and lower halves apart."""

import numpy as np

from core.perception.appearance import EMBEDDING_DIM, colour_embeddings

S = 16
RED, BLUE, GREEN, GREY = (220, 20, 20), (20, 20, 220), (20, 200, 20), (128, 128, 128)  # distinct HSV bins


def crop(top, bottom):
    image = np.zeros((S, S, 3), dtype=np.uint8)
    image[: S // 2], image[S // 2 :] = top, bottom
    return image


def person(value=1.0):
    return np.full((S, S), value)


def embed(*crops, probability=None):
    crops = np.stack(crops)
    probability = np.stack([person()] * len(crops)) if probability is None else np.stack(probability)
    return colour_embeddings(crops, probability)


def test_embeddings_have_unit_norm_and_the_documented_size():
    rng = np.random.default_rng(0)
    crops = rng.integers(0, 256, (3, S, S, 3), dtype=np.uint8)
    embedding = colour_embeddings(crops, rng.uniform(0.6, 1.0, (3, S, S)))
    assert embedding.shape == (3, EMBEDDING_DIM) == (3, 144)
    np.testing.assert_allclose(np.linalg.norm(embedding, axis=1), 1.0)
    assert (embedding >= 0).all()


def test_the_same_colours_in_another_arrangement_give_the_same_embedding():
    a = crop(RED, BLUE)
    b = a.copy()
    b[: S // 2] = np.roll(b[: S // 2], 3, axis=1)  # shuffle within the halves
    b[0, :4] = GREEN  # and swap a few top pixels ...
    a[1, :4] = GREEN  # ... for the same count of the same colour
    first, second = embed(a, b)
    np.testing.assert_allclose(first, second, atol=1e-12)


def test_different_clothes_are_root_two_apart():
    first, second = embed(crop(RED, BLUE), crop(GREEN, GREY))
    np.testing.assert_allclose(np.linalg.norm(first - second), np.sqrt(2.0))


def test_upper_and_lower_halves_are_told_apart():
    first, second = embed(crop(RED, BLUE), crop(BLUE, RED))  # the same colours, swapped
    np.testing.assert_allclose(np.linalg.norm(first - second), np.sqrt(2.0))


def test_half_shared_colours_give_the_hellinger_distance():
    mixed = crop(RED, BLUE)
    mixed[: S // 4] = GREEN  # top half: half red, half green
    first, second = embed(crop(RED, BLUE), mixed)
    # Histograms (top red n, bottom blue n) vs (top red n/2, top green n/2, bottom blue n), square-rooted
    # and normalised: (1/√2, 1/√2) vs (1/2, 1/2, 1/√2).
    expected = np.sqrt((1 / np.sqrt(2) - 0.5) ** 2 + 0.25)
    np.testing.assert_allclose(np.linalg.norm(first - second), expected)


def test_background_pixels_do_not_count():
    plain = crop(RED, BLUE)
    cluttered = plain.copy()
    cluttered[:, :5] = GREEN  # background columns on both halves
    probability = person(0.9)
    probability[:, :5] = 0.5  # not above one half: background
    first, second = embed(plain, cluttered, probability=[person(0.9), probability])
    np.testing.assert_allclose(first, second, atol=1e-12)
    # The same pixels counted as the person change the embedding.
    first, second = embed(plain, cluttered)
    assert np.linalg.norm(first - second) > 0.3


def test_no_crop_gives_no_embedding():
    assert colour_embeddings(np.zeros((0, S, S, 3), np.uint8), np.zeros((0, S, S))).shape == (
        0,
        EMBEDDING_DIM,
    )
